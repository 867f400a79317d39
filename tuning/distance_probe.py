"""Do cheap reverberation cues tell a distant voice (TV, someone across the room) from the caller?

Background speech is the one label the engine yields to every time: the STT transcribes the TV
and one word confirms. A far voice reaches the microphone through more of the room than a near
one, so its energy envelope falls more slowly after each syllable (the reverberant tail fills
the gap) and its linear-prediction residual is less peaky. This probe measures three such cues
on the user files alone (no echo, no noise bed: the most favourable case for them), from the
first voiced sample over the first 300, 600 and 1000 ms, per label:

* ``fall``: the steepest 40 ms fall of the 0.5-4 kHz envelope (8 ms frames), from frames within
  25 dB of the peak, dB;
* ``range``: the envelope's 95th minus 10th percentile, dB;
* ``kurtosis``: median kurtosis of the order-16 LP residual over 32 ms frames.

    .venv/bin/python tuning/distance_probe.py out/scenarios/manifest.jsonl \
        out/scenarios_s1/manifest.jsonl  # ... any number of manifests
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import signal
from scipy.linalg import solve_toeplitz

from livekit_bargein.eval.acoustics import load_mono

RATE_HZ = 16_000
HOP = 128  # 8 ms
LABELS = ("interrupt", "backchannel", "background_speech")
SPANS_MS = (300, 600, 1000)


def cues(x: np.ndarray, onset: int, span_ms: int) -> dict[str, float]:
    sos = signal.butter(4, [500, 4000], btype="band", fs=RATE_HZ, output="sos")
    y = signal.sosfilt(sos, x)
    n = len(y) // HOP
    env = 10 * np.log10(np.mean(y[: n * HOP].reshape(n, HOP) ** 2, axis=1) + 1e-12)
    seg = env[onset // HOP : onset // HOP + span_ms // 8]
    peak = seg.max()
    falls = [seg[i] - seg[i + 5] for i in range(len(seg) - 5) if seg[i] > peak - 25]
    kurt = []
    xs = x[onset : onset + span_ms * RATE_HZ // 1000]
    for j in range(0, len(xs) - 512, 256):
        f = xs[j : j + 512] * np.hanning(512)
        if np.sum(f**2) < 1e-7:
            continue
        r = np.correlate(f, f, "full")[511 : 511 + 17]
        a = solve_toeplitz(r[:16], r[1:17])
        res = signal.lfilter(np.r_[1.0, -a], [1.0], f)[16:]
        kurt.append(np.mean(res**4) / np.mean(res**2) ** 2)
    return {
        "fall": max(falls) if falls else 0.0,
        "range": float(np.percentile(seg, 95) - np.percentile(seg, 10)),
        "kurtosis": float(np.median(kurt)) if kurt else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifests", nargs="+", type=Path)
    args = ap.parse_args()
    rows: list[tuple[str, int, dict[str, float]]] = []
    for man in args.manifests:
        for line in man.read_text().splitlines():
            d = json.loads(line)
            if d["label"] not in LABELS:
                continue
            x = load_mono(man.parent / d["user_audio"], sample_rate_hz=RATE_HZ)
            onset = int(d.get("speech_start_s", 0.0) * RATE_HZ)
            for span in SPANS_MS:
                rows.append((d["label"], span, cues(x, onset, span)))
    for span in SPANS_MS:
        for cue in ("fall", "range", "kurtosis"):
            cells = []
            for label in LABELS:
                v = np.array([c[cue] for lab, s, c in rows if lab == label and s == span])
                lo, med, hi = np.percentile(v, [5, 50, 95])
                cells.append(f"{label} {lo:.1f}/{med:.1f}/{hi:.1f} [{v.min():.1f}, {v.max():.1f}]")
            print(f"{cue} {span} ms (p5/p50/p95 [min, max]): " + " | ".join(cells))


if __name__ == "__main__":
    main()
