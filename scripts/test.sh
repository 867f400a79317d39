#!/usr/bin/env bash
# The test command: set-up, then the default suite (long runs are marked `benchmark` and excluded).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# tests/test_html_pages.py loads the HTML pages in a real headless Chromium (Debian's package)
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends chromium
  else
    echo "chromium missing and not root: tests/test_html_pages.py will fail" \
      "(install it, or set LIVEKIT_BARGEIN_BROWSER_TESTS_OPTIONAL=1 to skip it)" >&2
  fi
fi
.venv/bin/python -m pytest -q "$@"
