"""Probe: Silero on the near-end estimate vs on AEC3's output, per window (an experiment).

Per scenario, the agent never yields; per 32 ms window, Silero on: AEC3's output (``clean``), the
near-end estimate (``mask``: ``NearEndDetector(separate=True)``, aligned to mic time, its 20-40 ms
latency ignored), the near-end sound alone (``oracle``: the mic with the echo left out) and the
raw mic (``raw``). What motivated the near-end veto (README, "What happens inside"):

    .venv/bin/python tuning/mask_probe.py --manifest out/scenarios/manifest.jsonl \
        --out out/fast/probe.json [--band-hi-hz 7900]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import fast_replay as fr  # noqa: E402

from livekit_bargein.near_end import NearEndDetector  # noqa: E402


def probe(scenario: Any) -> dict[str, Any]:
    from livekit_bargein.aec import EchoCanceller
    from livekit_bargein.eval.acoustics import AcousticPath
    from livekit_bargein.vad import WINDOW_SAMPLES

    rate, tick = fr._RATE_HZ, fr._TICK
    aec = EchoCanceller(sample_rate_hz=rate, noise_suppression=True, wait_for_echo=True)
    masker = NearEndDetector(
        sample_rate_hz=rate, band_hz=(100.0, fr._worker_state["band_hi_hz"]), separate=True
    )
    agent = fr._agent_audio(scenario.agent_text)
    path = AcousticPath(scenario, sample_rate_hz=rate)
    near = AcousticPath(scenario, sample_rate_hz=rate)
    lead = int(fr._LEAD_S * rate)
    path.place_user(lead)
    near.place_user(lead)
    n_ticks = (
        lead // tick
        + len(agent) // tick
        + int(((scenario.user_onset_s or 0.0) + len(path.user) / rate + fr._TAIL_S) * 100)
    )
    clean, mics, oracle, masked = [], [], [], []
    for t in range(n_ticks):
        s0 = t * tick
        played = np.zeros(tick, np.float32)
        k = s0 - lead
        if 0 <= k < len(agent):
            chunk = agent[k : k + tick]
            played[: len(chunk)] = chunk
        mic = path.mic(s0, played)
        oracle.append(near.mic(s0, np.zeros(tick, np.float32)))
        af = aec.process(mic, played if s0 >= lead else None)
        clean.append(af.clean)
        masker.push(mic, played)
        masked.append(masker.pop_near_end())
        mics.append(mic)
    # the estimate starts at the mic's first sample; its last ~40 ms are still open
    est = np.concatenate(masked)
    masked_aligned = np.zeros(n_ticks * tick, np.float32)
    masked_aligned[: len(est)] = est
    streams = {
        "clean": np.concatenate(clean),
        "mask": masked_aligned,
        "oracle": np.concatenate(oracle),
        "raw": np.concatenate(mics),
    }
    probs: dict[str, list[float]] = {}
    for name, x in streams.items():
        model = fr._worker_state["model_factory"]()
        n = len(x) // WINDOW_SAMPLES
        probs[name] = [
            round(float(model(x[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES])), 3)
            for i in range(n)
        ]
    voiced = path.user_voiced_sample
    return {
        "id": scenario.id,
        "label": scenario.label,
        "lead_ms": lead / 16.0,
        "voiced_ms": None if voiced is None else (voiced - lead) / 16.0,
        "window_ms": WINDOW_SAMPLES / 16.0,
        "probs": probs,
    }


def _init_worker(band_hi_hz: float) -> None:
    fr._init_worker({}, "speakerphone", False)
    fr._worker_state["band_hi_hz"] = band_hi_hz


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--band-hi-hz", type=float, default=4000.0, help="top of the masked band")
    args = ap.parse_args()
    import json

    from livekit_bargein.eval.manifest import load_manifest

    scenarios = load_manifest(args.manifest)
    with mp.get_context("spawn").Pool(
        args.jobs, initializer=_init_worker, initargs=(args.band_hi_hz,)
    ) as pool:
        res = pool.map(probe, scenarios, chunksize=1)
    args.out.write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
