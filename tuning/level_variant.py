"""Derive a manifest heard through a quieter (or louder) microphone: a level-robustness variant.

The bundled callers speak at about -20 dBFS (active level) and the agent's echo arrives relative
to the digital playback. A real microphone may sit 10-25 dB lower. ``--mic-gain-db`` shifts
everything the microphone hears by the same amount (the caller's ``user_gain_db`` and the echo's
``gain_db``; noise beds follow the caller, being set by SNR), so every ratio between caller, echo
and noise is kept and only the absolute level changes; ``--user-only`` shifts the caller (and its
noise bed) alone, which also makes the echo louder relative to the caller:

    .venv/bin/python tuning/level_variant.py out/scenarios/manifest.jsonl out/mic-12 \
        --mic-gain-db -12
    .venv/bin/python tuning/fast_replay.py --manifest out/mic-12/manifest.jsonl --jobs 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from echo_gain_variant import write_variant


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--mic-gain-db", type=float, required=True)
    ap.add_argument("--user-only", action="store_true", help="leave the echo's gain as it is")
    args = ap.parse_args(argv)

    def change(entry: dict[str, Any]) -> dict[str, Any]:
        if entry.get("user_audio"):
            entry["user_gain_db"] = float(entry.get("user_gain_db", 0.0)) + args.mic_gain_db
        if entry.get("echo") and not args.user_only:
            gain_db = entry["echo"]["gain_db"] + args.mic_gain_db
            entry["echo"] = {**entry["echo"], "gain_db": gain_db}
        return entry

    write_variant(args.manifest, args.out_dir, change)
    return 0


if __name__ == "__main__":
    sys.exit(main())
