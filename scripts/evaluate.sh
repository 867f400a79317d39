#!/usr/bin/env bash
# The main job: set-up, build the bundled scenarios, run the evaluator with the baseline
# configurations (and the barge-in engine's, when registered), write the report to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=${OUT:-out}
CONFIGS=${CONFIGS:-bargein,bargein-telephony,bargein-headset,bargein-noisy,livekit-default,livekit-fast,livekit-aec}
JOBS=${JOBS:-4}
.venv/bin/livekit-bargein scenarios build "$OUT/scenarios"
.venv/bin/livekit-bargein eval --manifest "$OUT/scenarios/manifest.jsonl" \
  --configs "$CONFIGS" --out "$OUT/eval" --jobs "$JOBS"
