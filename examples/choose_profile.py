"""Choosing and tuning a barge-in profile, then measuring the choice offline.

    .venv/bin/python examples/choose_profile.py
    .venv/bin/python examples/choose_profile.py --configs bargein,bargein-telephony@onset_ms=96

1. What each profile changes (only the knobs that differ between profiles).
2. Tuning at runtime: ``update_options`` switches profile and/or changes knobs on a live engine;
   a bad value is rejected and the engine keeps its options.
3. Measuring: replays a few of the bundled scenarios (built into a temporary folder, or your own
   manifest with ``--manifest``) through a real ``AgentSession`` under each configuration and prints
   what the agent did. ``bargein-PROFILE@KNOB=VALUE+KNOB=VALUE`` is a tuned variant.

By default it compares ``speakerphone`` with ``telephony`` on two phone-line scenarios: a caller
interrupting, and a noise event the agent should talk through. Runs without a LiveKit server or
any key (Piper voice, scripted LLM, oracle STT), in real time: about 40 s on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import fields
from pathlib import Path

from livekit_bargein import PROFILES, BargeIn
from livekit_bargein.eval.metrics import score_scenario
from livekit_bargein.eval.runner import run_eval
from livekit_bargein.eval.scenarios import build_bundled_set

DEFAULT_CONFIGS = ("bargein", "bargein-telephony")
DEFAULT_SCENARIOS = ("interrupt-001", "noise-001")  # both on an 8 kHz phone line
_BUNDLED_PREFIX = 7  # the bundled set's first scenarios include both


def profile_table() -> str:
    """The knobs on which the profiles differ, one row per knob."""
    names = list(PROFILES)
    rows = [f"{'knob':<24}" + "".join(f"{n:>14}" for n in names)]
    for f in fields(next(iter(PROFILES.values()))):
        values = [getattr(PROFILES[n], f.name) for n in names]
        if all(v == values[0] for v in values):
            continue
        rows.append(f"{f.name:<24}" + "".join(f"{v:>14g}" for v in values))
    return "\n".join(rows)


def tune_at_runtime() -> list[str]:
    """What ``update_options`` does to a live engine (the same calls work mid-call)."""
    out = []
    bargein = BargeIn(profile="speakerphone")
    out.append(f"start:            {bargein.profile}, onset_ms={bargein.options.onset_ms:g}")
    bargein.update_options(onset_ms=64.0)  # a knob, profile kept
    out.append(f"onset_ms=64:      {bargein.profile}, onset_ms={bargein.options.onset_ms:g}")
    # e.g. once you learn the caller is on a phone line: the profile's values, then the override
    bargein.update_options(profile="telephony", confirm_speech_ms=600.0)
    o = bargein.options
    out.append(
        f"telephony:        {bargein.profile}, onset_ms={o.onset_ms:g}, "
        f"min_snr_db={o.min_snr_db:g}, confirm_speech_ms={o.confirm_speech_ms:g}"
    )
    try:
        bargein.update_options(activation_threshold=1.5)
    except ValueError as e:
        out.append(f"rejected:         {e} (options unchanged: {bargein.options == o})")
    return out


def measure(manifest: Path, configs: list[str], scenario_ids: list[str]) -> list[str]:
    """Replay the scenarios under each configuration; one line per run."""
    results = run_eval(manifest, configs, jobs=4, procs=1, only=scenario_ids)
    out = []
    for config in configs:
        for trace in results[config]:
            s = score_scenario(trace)
            if s["error"]:
                out.append(f"{config:<28} {s['id']:<16} error: {s['error']}")
                continue
            ttfy = s["time_to_yield_ms"]
            yielded = f"yielded after {ttfy:.0f} ms" if ttfy is not None else ""
            if s["label"] == "interrupt" and s["missed"]:
                yielded = "MISSED the interruption"
            false = [y for y in s["yields"] if y["false"]]
            first_false = (
                f" (first at {false[0]['start_ms']:.0f} ms, {false[0]['kind']})" if false else ""
            )
            out.append(
                f"{config:<28} {s['id']:<16} {s['label']:<12} {yielded:<22} "
                f"false yields: {s['false_yields']}{first_false}  "
                f"reply completed: {s['reply_completed']}"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--configs", default=",".join(DEFAULT_CONFIGS))
    ap.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS), help="scenario ids")
    ap.add_argument("--manifest", type=Path, default=None, help="default: bundled scenarios")
    args = ap.parse_args(argv)
    configs = [c for c in args.configs.split(",") if c]
    scenario_ids = [s for s in args.scenarios.split(",") if s]

    print("1. Profiles (knobs that differ)\n")
    print(profile_table())
    print("\n2. Tuning at runtime\n")
    print("\n".join(tune_at_runtime()))
    print(f"\n3. Replaying {', '.join(scenario_ids)} under {', '.join(configs)} (real time)\n")
    with tempfile.TemporaryDirectory() as tmp:
        manifest = args.manifest or build_bundled_set(Path(tmp), limit=_BUNDLED_PREFIX)
        print("\n".join(measure(manifest, configs, scenario_ids)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
