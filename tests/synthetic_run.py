"""A tiny evaluator run directory, as ``livekit-bargein eval`` leaves it, without running one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from synthetic_call import FakeSession, run_call

from livekit_bargein import BargeIn
from livekit_bargein.debug_trace import DecisionTrace

VARIANT = "bargein@onset_ms=64"
"""A config name that needs quoting in a URL."""


def _scenario(sid: str, label: str, **kw: Any) -> dict[str, Any]:
    return {"id": sid, "label": label, "time_to_yield_ms": None, "missed": None,
            "false_yields": 0, "error": None, **kw}  # fmt: skip


def _metrics(missed_rate: float) -> dict[str, Any]:
    return {
        "n_scenarios": 3,
        "time_to_yield_ms": {"p50": 190.8, "p95": 1143.2, "max": 1321.0, "n": 2},
        "missed_interrupt_rate": missed_rate,
        "false_yields_per_agent_min": 2.99,
        "false_yield_rate": {"backchannel": 1.0, "interrupt": 0.0},
    }


def make_run_dir(root: Path) -> Path:
    """report.json for two configs, one plot, decision traces for the engine's config."""
    run = root / "run"
    run.mkdir(parents=True)
    engine = [
        _scenario("interrupt-001", "interrupt", time_to_yield_ms=190.8, missed=False),
        _scenario("interrupt-002", "interrupt", missed=True),
        _scenario("backchannel-001", "backchannel", false_yields=1),
    ]
    report = {
        "configs": {
            VARIANT: {"metrics": _metrics(0.5), "scenarios": engine},
            "livekit-default": {
                "metrics": _metrics(0.0),
                "scenarios": [_scenario("interrupt-001", "interrupt", time_to_yield_ms=420.0,
                                        missed=False)],  # fmt: skip
            },
        },
        "run": {"manifest": "m.jsonl", "jobs": 4, "elapsed_s": 12.5},
    }
    (run / "report.json").write_text(json.dumps(report))
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.step([0, 150, 190, 400], [0, 0.3, 0.5, 1.0], where="post")
    ax.set_title("Time to yield: CDF")
    fig.savefig(run / "ttfy_cdf.png", dpi=80)
    for s in engine:
        bargein, session = BargeIn(), FakeSession()
        path = run / "decision_traces" / VARIANT / f"{s['id']}.jsonl"
        with DecisionTrace(bargein, path, session=session,
                           meta={"scenario_id": s["id"], "config": VARIANT}):  # fmt: skip
            run_call(bargein, session)
    # the harness' ground truth for one of them (16 kHz samples, the engine's clock)
    truth = run / "traces" / VARIANT / "interrupt-002.json"
    truth.parent.mkdir(parents=True)
    ground = {"sample_rate_hz": 16000, "first_audible_sample": 15360, "user_voiced_sample": 30720}
    truth.write_text(json.dumps({**ground, "user_end_sample": None}))
    return run
