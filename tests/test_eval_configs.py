"""The engine's evaluator configurations write a decision trace per scenario when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthetic_call import FakeSession, ScriptedCall

from livekit_bargein.debug_trace import read_trace
from livekit_bargein.eval.configs import HarnessContext, get_config
from livekit_bargein.eval.speaker import SimSpeaker


def _ctx(**kw: Any) -> HarnessContext:
    # silero is only read by LiveKit's own configurations' session_kwargs()
    return HarnessContext(sample_rate_hz=16_000, speaker=SimSpeaker(sample_rate_hz=16_000),
                          silero=None, **kw)  # type: ignore[arg-type]  # fmt: skip


async def test_bargein_setup_writes_and_closes_the_scenario_trace(tmp_path: Path) -> None:
    name = "bargein@onset_ms=64"
    setup: Any = get_config(name).make(
        _ctx(scenario_id="interrupt-007", config_name=name, decision_trace_dir=tmp_path)
    )
    ScriptedCall(setup.bargein, FakeSession()).windows(
        40, prob=0.01, level_db=-70.0, agent=False
    )
    await setup.aclose()
    data = read_trace(tmp_path / name / "interrupt-007.jsonl")
    assert data.end is not None and len(data.frames) == 40
    assert data.header["meta"] == {"scenario_id": "interrupt-007", "config": name}
    assert data.header["options"]["onset_ms"] == 64.0  # the variant's options, not the profile's


async def test_no_trace_without_a_directory(tmp_path: Path) -> None:
    setup: Any = get_config("bargein").make(_ctx(scenario_id="x", config_name="bargein"))
    assert setup.decision_trace is None
    await setup.aclose()
    assert _ctx(scenario_id="x", decision_trace_dir=tmp_path).decision_trace_path == (
        tmp_path / "unnamed" / "x.jsonl"
    )
    assert _ctx(decision_trace_dir=tmp_path).decision_trace_path is None
