from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console

from livekit_bargein.eval.report import (
    build_report,
    format_label_table,
    format_stage_table,
    format_table,
    markdown_table,
    plot_false_yield_by_label,
    plot_timeline,
    plot_tradeoff,
    plot_ttfy_cdf,
    print_table,
    write_report,
)
from livekit_bargein.eval.trace import TICK_SAMPLES, ContextRecord, ScenarioTrace

TAIL = "Tuesday at three. Anything else?"


def _trace(
    sid: str, label: str, states: list[tuple[int, str]], voiced_tick: int | None = None, **kw
) -> ScenarioTrace:
    speaker: list[str] = []
    played: list[int] = []
    for count, st in states:
        speaker += [st] * count
        played += [TICK_SAMPLES if st == "playing" else 0] * count
    n = len(speaker)
    t = [i / 10 for i in range(n)]
    return ScenarioTrace(
        scenario_id=sid,
        label=label,
        config=kw.pop("config", "c"),
        speaker_states=speaker,
        played_samples=played,
        first_audible_sample=0,
        user_onset_sample=None if voiced_tick is None else (voiced_tick - 5) * TICK_SAMPLES,
        user_voiced_sample=None if voiced_tick is None else voiced_tick * TICK_SAMPLES,
        user_end_sample=None if voiced_tick is None else (voiced_tick + 60) * TICK_SAMPLES,
        reply_completed=speaker[-1] == "done",
        agent_level_db=[
            -20 + 3 * math.sin(x) if p else float("-inf") for x, p in zip(t, played, strict=True)
        ],
        mic_level_db=[-45 + 10 * math.cos(x) for x in t],
        vad_probability=[(i * 512, abs(math.sin(i / 7))) for i in range(n * TICK_SAMPLES // 512)],
        events=[
            {"sample": 50 * TICK_SAMPLES, "kind": "pause"},
            {"sample": 80 * TICK_SAMPLES, "kind": "resume"},
        ],
        **kw,
    )


def _configs() -> dict[str, list[ScenarioTrace]]:
    ctx = ContextRecord(
        full_reply_text="Your appointment is on " + TAIL,
        message_text="Your appointment is on",
        message_interrupted=True,
        unspoken_tail=TAIL,
        heard_text="Your appointment is on",
    )
    out: dict[str, list[ScenarioTrace]] = {}
    for name, delay_ticks in (("baseline", 40), ("bargein", 15)):
        out[name] = [
            _trace(
                "i1",
                "interrupt",
                [(100 + delay_ticks, "playing"), (20, "cleared")],
                100,
                context=ctx,
                config=name,
            ),
            _trace(
                "i2", "interrupt", [(60 + delay_ticks, "playing"), (20, "cleared")], 60, config=name
            ),
            _trace(
                "b1",
                "backchannel",
                [(50, "playing"), (30, "paused"), (100, "playing"), (5, "done")],
                40,
                config=name,
            ),
            _trace(
                "n1", "noise", [(200, "playing"), (5, "done")], 50, config=name, max_tick_lag_ms=2.5
            ),
        ]
    return out


def test_write_report_structure(tmp_path: Path) -> None:
    report = write_report(tmp_path / "out", _configs(), run_info={"seed": 1})
    loaded = json.loads((tmp_path / "out" / "report.json").read_text())
    assert loaded == report
    assert set(loaded) == {"configs", "run"} and loaded["run"] == {"seed": 1}
    assert list(loaded["configs"]) == ["baseline", "bargein"]
    for cfg in loaded["configs"].values():
        assert set(cfg) == {"metrics", "scenarios"}
        m = cfg["metrics"]
        for key in (
            "time_to_yield_ms",
            "time_to_yield_unmeasured",
            "missed_interrupt_rate",
            "false_yields_per_agent_min",
            "false_yield_rate",
            "backchannel_resume_rate",
            "context_preservation_rate",
        ):
            assert key in m
        assert set(m["false_yield_rate"]) == {"interrupt", "backchannel", "noise"}
        assert [s["id"] for s in cfg["scenarios"]] == ["i1", "i2", "b1", "n1"]
    assert loaded["configs"]["baseline"]["metrics"]["time_to_yield_ms"]["p50"] == 400.0
    assert loaded["configs"]["bargein"]["metrics"]["time_to_yield_ms"]["max"] == 150.0
    assert loaded["configs"]["bargein"]["metrics"]["context_preservation_rate"] == 0.5
    assert loaded["configs"]["bargein"]["metrics"]["max_tick_lag_ms"] == 2.5


def test_write_report_without_run_info(tmp_path: Path) -> None:
    report = write_report(tmp_path, {"only": _configs()["baseline"]})
    assert set(report) == {"configs"}


def test_tables_name_configs_and_labels() -> None:
    report = build_report(_configs())
    console = Console(record=True, width=250)
    print_table(report, console=console)
    text = console.export_text()
    for word in ("baseline", "bargein", "backchannel", "noise", "interrupt", "ttfy p50 ms"):
        assert word in text
    assert format_table(report).row_count == 2
    assert format_label_table(report).row_count == 3
    md = markdown_table(report)
    assert "| baseline |" in md and "| bargein |" in md and "| noise |" in md
    assert md.count("\n|---") == 3  # summary, labels, interrupt stages
    assert format_stage_table(report).row_count == 2


def test_plots_are_written(tmp_path: Path) -> None:
    report = build_report(_configs())
    cdf = tmp_path / "ttfy_cdf.png"
    bars = tmp_path / "plots" / "false_yield_by_label.png"
    timeline = tmp_path / "timeline.png"
    plot_ttfy_cdf(report, cdf)
    plot_false_yield_by_label(report, bars)
    plot_timeline(_configs()["bargein"][2], timeline, title="backchannel b1")
    tradeoff = tmp_path / "tradeoff.png"
    plot_tradeoff(report, tradeoff)
    for p in (cdf, bars, timeline, tradeoff):
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 10_000


def test_plots_survive_empty_data(tmp_path: Path) -> None:
    report = {"configs": {"x": {"metrics": {"false_yield_rate": {}}, "scenarios": []}}}
    plot_ttfy_cdf(report, tmp_path / "a.png")
    plot_false_yield_by_label(report, tmp_path / "b.png")
    plot_tradeoff(report, tmp_path / "d.png")
    bare = ScenarioTrace(scenario_id="e", label="echo_only", config="x")
    plot_timeline(bare, tmp_path / "c.png")
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("a.png", "b.png", "c.png"))
