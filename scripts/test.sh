#!/usr/bin/env bash
# The test command: set-up, then the default suite (long runs are marked `benchmark` and excluded).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -q "$@"
