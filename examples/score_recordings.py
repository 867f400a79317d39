"""Score your own recordings: write a manifest for a folder of WAVs, run the evaluator on it.

    .venv/bin/python examples/score_recordings.py my_recordings/ --out out/mine
    .venv/bin/python examples/score_recordings.py demo/ --demo --out out/demo   # try it first

The folder holds the near-end events as the agent's microphone would hear them (WAV or anything
soundfile reads; any sample rate, mono or stereo) and a ``labels.csv``:

    file,label,user_text,user_onset_s,speech_start_s,channel,echo_gain_db,echo_delay_ms
    wait.wav,interrupt,"Hold on, I meant Tuesday.",1.5,,,-10,120
    uhhuh.wav,backchannel,uh-huh,2.0,,telephony,,

Only ``file`` and ``label`` are required (labels: interrupt, backchannel, cough, throat_clear,
sneeze, laugh, breath, noise, background_speech). ``user_onset_s`` (default 1.5) is when the event
starts after the agent's first audible sample; ``speech_start_s`` is where the voice starts inside
the file: the ground truth for time-to-yield. Left empty it is estimated from the level (the
first 10 ms frame within 30 dB of the loudest and 10 dB above the file's floor): set it by hand if
the file starts with other sound. ``echo_*`` adds the agent's own voice leaking back. The agent says
``--agent-text`` while the event happens.

It writes ``manifest.jsonl`` beside the CSV (the format of shared/scenario-format.md), then runs
``livekit-bargein eval`` on it, which writes ``report.json``, ``table.md`` and plots to ``--out``,
and prints a summary per configuration. Offline: no LiveKit server or key.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from livekit_bargein.eval.manifest import load_manifest

AGENT_TEXT = (
    "Your table is booked for seven tonight. I have sent a confirmation to your phone, and you "
    "can change the time or the number of guests from the link in that message."
)
LABELS_CSV = "labels.csv"
MANIFEST = "manifest.jsonl"
DEFAULT_ONSET_S = 1.5
_FRAME_S = 0.01


def estimate_speech_start_s(audio: np.ndarray, sample_rate_hz: int) -> float:
    """First 10 ms frame within 30 dB of the loudest and 10 dB above the floor (10th pct)."""
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    n = max(1, int(sample_rate_hz * _FRAME_S))
    frames = len(audio) // n
    if frames == 0:
        return 0.0
    x = audio[: frames * n].astype(np.float64).reshape(frames, n)
    level_db = 10 * np.log10(np.mean(x * x, axis=1) + 1e-12)
    threshold_db = max(level_db.max() - 30.0, np.percentile(level_db, 10) + 10.0)
    first = int(np.argmax(level_db >= threshold_db))
    return round(first * _FRAME_S, 3)


def _num(row: dict[str, str], key: str) -> float | None:
    value = (row.get(key) or "").strip()
    if not value:
        return None
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    return v


def manifest_entry(row: dict[str, str], folder: Path, *, agent_text: str) -> dict[str, Any]:
    """One manifest line for one CSV row (paths stay relative to the folder)."""
    file = (row.get("file") or "").strip()
    label = (row.get("label") or "").strip()
    if not file or not label:
        raise ValueError(f"every row needs file and label, got {row}")
    audio, rate = sf.read(folder / file, dtype="float32", always_2d=False)
    speech_start = _num(row, "speech_start_s")
    onset = _num(row, "user_onset_s")
    entry: dict[str, Any] = {
        "id": Path(file).stem,
        "label": label,
        "agent_text": agent_text,
        "user_audio": file,
        "user_onset_s": DEFAULT_ONSET_S if onset is None else onset,
        "speech_start_s": (
            estimate_speech_start_s(audio, rate) if speech_start is None else speech_start
        ),
    }
    if text := (row.get("user_text") or "").strip():
        entry["user_text"] = text
    if channel := (row.get("channel") or "").strip():
        entry["channel"] = channel
    gain, delay = _num(row, "echo_gain_db"), _num(row, "echo_delay_ms")
    if gain is not None or delay is not None:
        entry["echo"] = {"gain_db": gain or 0.0, "delay_ms": delay or 0.0}
    return entry


def write_manifest(folder: Path, *, agent_text: str = AGENT_TEXT) -> Path:
    """``folder/labels.csv`` -> ``folder/manifest.jsonl``, checked by the evaluator's loader."""
    with open(folder / LABELS_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    lines = [json.dumps(manifest_entry(r, folder, agent_text=agent_text)) for r in rows]
    manifest = folder / MANIFEST
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_manifest(manifest)  # a bad value fails here, naming the line and the key
    return manifest


def write_demo(folder: Path) -> None:
    """Two recordings made with the evaluator's Piper voice, and their labels."""
    from livekit_bargein.eval.piper_voice import PiperSpeaker

    folder.mkdir(parents=True, exist_ok=True)
    piper = PiperSpeaker.load()
    rng = np.random.default_rng(0)
    events = [
        ("wait.wav", "interrupt", "Hold on, I meant Tuesday, not tonight.", 1.0, "-10", "120"),
        ("uhhuh.wav", "backchannel", "uh-huh", 3.2, "-10", "120"),
    ]
    with open(folder / LABELS_CSV, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "user_text", "user_onset_s", "echo_gain_db", "echo_delay_ms"])
        for file, label, text, onset, gain, delay in events:
            voice = piper.synthesize(text, out_rate_hz=48_000, pitch_semitones=3.0).audio
            lead = np.zeros(int(0.4 * 48_000), np.float32)  # a recording rarely starts on the word
            audio = np.concatenate([lead, 0.5 * voice, lead])
            audio += rng.normal(0.0, 10 ** (-60 / 20), len(audio)).astype(np.float32)
            sf.write(folder / file, audio, 48_000)
            w.writerow([file, label, text, onset, gain, delay])


def run_evaluator(manifest: Path, out: Path, *, configs: str, jobs: int) -> dict[str, Any]:
    """``livekit-bargein eval`` (the CLI a user runs), then its ``report.json``."""
    cmd = [sys.executable, "-m", "livekit_bargein", "eval", "--manifest", str(manifest),
           "--configs", configs, "--out", str(out), "--jobs", str(jobs)]  # fmt: skip
    subprocess.run(cmd, check=True)
    report: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return report


def summary(report: dict[str, Any]) -> list[str]:
    out = []
    for name, cfg in report["configs"].items():
        m = cfg["metrics"]
        ttfy = m["time_to_yield_ms"]
        p50 = "-" if ttfy["p50"] is None else f"{ttfy['p50']:.0f} ms"
        missed = m["missed_interrupt_rate"]
        out.append(
            f"{name}: time to yield p50 {p50} (n={ttfy['n']}), "
            f"missed {'-' if missed is None else f'{missed:.0%}'}, "
            f"false yields {m['false_yields']}, errors {m['errors']}"
        )
        for s in cfg["scenarios"]:
            t = s["time_to_yield_ms"]
            out.append(
                f"  {s['id']:<20} {s['label']:<12} "
                f"{'yield ' + format(t, '.0f') + ' ms' if t is not None else '':<14} "
                f"false yields {s['false_yields']}, reply completed {s['reply_completed']}"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("folder", type=Path, help=f"WAVs and {LABELS_CSV}")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--configs", default="bargein,livekit-default")
    ap.add_argument("--jobs", type=int, default=4, help="concurrent sessions (2 per core)")
    ap.add_argument("--agent-text", default=AGENT_TEXT, help="what the agent is saying")
    ap.add_argument("--demo", action="store_true", help=f"first write demo WAVs and {LABELS_CSV}")
    args = ap.parse_args(argv)
    if args.demo:
        write_demo(args.folder)
    manifest = write_manifest(args.folder, agent_text=args.agent_text)
    print(f"wrote {manifest} ({len(load_manifest(manifest))} scenarios)")
    report = run_evaluator(manifest, args.out, configs=args.configs, jobs=args.jobs)
    print("\n".join(summary(report)))
    print(f"full report: {args.out / 'report.json'}, {args.out / 'table.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
