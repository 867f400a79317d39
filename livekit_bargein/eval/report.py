"""report.json, summary tables (rich / markdown) and plots of an evaluation run.

Plots draw on a bare ``matplotlib.figure.Figure`` (Agg canvas): no pyplot global state, no display.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from rich import box
from rich.console import Console
from rich.table import Table

from .metrics import compute_metrics, find_yields, score_scenario
from .trace import ScenarioTrace, SpeakerState

_DASH = "-"
_LEVEL_FLOOR_DB = -80.0
"""Silence is drawn at this level instead of -inf."""


def build_report(
    traces_by_config: dict[str, list[ScenarioTrace]], *, run_info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"configs": {NAME: {"metrics": ..., "scenarios": [...]}}}`` (+ "run" when given)."""
    configs: dict[str, Any] = {}
    for name, traces in traces_by_config.items():
        scores = [score_scenario(t) for t in traces]
        configs[name] = {"metrics": compute_metrics(traces, scores), "scenarios": scores}
    report: dict[str, Any] = {"configs": configs}
    if run_info is not None:
        report["run"] = run_info
    return report


def write_report(
    out_dir: Path,
    traces_by_config: dict[str, list[ScenarioTrace]],
    *,
    run_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score every config, write ``out_dir/report.json`` and return the report."""
    report = build_report(traces_by_config, run_info=run_info)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


# --- tables ----------------------------------------------------------------------------------


def _num(v: float | None, digits: int = 0) -> str:
    return _DASH if v is None else f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return _DASH if v is None else f"{100.0 * v:.1f}"


_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("ttfy p50 ms", lambda m: _num(m["time_to_yield_ms"]["p50"])),
    ("ttfy p95 ms", lambda m: _num(m["time_to_yield_ms"]["p95"])),
    ("ttfy max ms", lambda m: _num(m["time_to_yield_ms"]["max"])),
    ("unmeasured", lambda m: str(m["time_to_yield_unmeasured"])),
    ("missed %", lambda m: _pct(m["missed_interrupt_rate"])),
    ("false yields/agent-min", lambda m: _num(m["false_yields_per_agent_min"], 2)),
    ("backchannel completed %", lambda m: _pct(m["backchannel_resume_rate"])),
    ("context preserved %", lambda m: _pct(m["context_preservation_rate"])),
    ("max tick lag ms", lambda m: _num(m["max_tick_lag_ms"], 1)),
)


def _summary_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["config", *(title for title, _ in _COLUMNS)]
    rows = [
        [name, *(fmt(cfg["metrics"]) for _, fmt in _COLUMNS)]
        for name, cfg in report["configs"].items()
    ]
    return header, rows


def _labels(report: dict[str, Any]) -> list[str]:
    labels: set[str] = set()
    for cfg in report["configs"].values():
        labels.update(cfg["metrics"]["false_yield_rate"])
    return sorted(labels)


def _label_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    names = list(report["configs"])
    header = ["label", *names]
    rows = [
        [
            label,
            *(_pct(report["configs"][n]["metrics"]["false_yield_rate"].get(label)) for n in names),
        ]
        for label in _labels(report)
    ]
    return header, rows


_STAGE_TITLES = {
    "detect": "detect",
    "stop_audio": "stop audio",
    "cancel_llm": "cancel LLM",
    "tag_context": "tag context",
}


def _stage_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per-stage latency p50 / p95 (ms, n) and LLM tokens after the stop, per config."""
    header = ["config", *(f"{t} p50/p95 ms (n)" for t in _STAGE_TITLES.values()),
              "LLM tokens after stop (mean/max)"]
    rows = []
    for name, cfg in report["configs"].items():
        m = cfg["metrics"]
        stages = m.get("stage_latency_ms") or {}
        cells = []
        for key in _STAGE_TITLES:
            st = stages.get(key) or {}
            digits = 1 if key == "tag_context" else 0
            cells.append(
                f"{_num(st.get('p50'), digits)} / {_num(st.get('p95'), digits)} ({st.get('n', 0)})"
            )
        tok = m.get("llm_tokens_after_cancel") or {}
        rows.append([name, *cells, f"{_num(tok.get('mean'), 1)} / {_num(tok.get('max'))}"])
    return header, rows


def _rich(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for i, col in enumerate(header):
        # Narrow consoles fold cells instead of cutting numbers with an ellipsis.
        table.add_column(col, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def format_table(report: dict[str, Any]) -> Table:
    """One row per config: time-to-yield, misses, false yields, backchannels, context, tick lag."""
    return _rich("barge-in evaluation", *_summary_rows(report))


def format_label_table(report: dict[str, Any]) -> Table:
    """false_yield_rate (%) per label (rows) and config (columns)."""
    return _rich("false yield rate % by label", *_label_rows(report))


def format_stage_table(report: dict[str, Any]) -> Table:
    """Per-stage interrupt latency and LLM tokens after the stop, per config."""
    return _rich("interrupt stages", *_stage_rows(report))


def print_table(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print(format_table(report))
    console.print(format_label_table(report))
    console.print(format_stage_table(report))


def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_table(report: dict[str, Any]) -> str:
    """Both tables as GitHub markdown (for READMEs and closing notes)."""
    return (
        _md(*_summary_rows(report))
        + "\n\nFalse yield rate (%) by label:\n\n"
        + _md(*_label_rows(report))
        + "\n\nInterrupt stages (detect: first voiced sample → stop command; stop audio: → last "
        "sample played; cancel LLM and tag context: audio cleared → LLM stream closed / message "
        "in the chat context):\n\n"
        + _md(*_stage_rows(report))
        + "\n"
    )


# --- plots -----------------------------------------------------------------------------------


def _save(fig: Figure, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def plot_ttfy_cdf(report: dict[str, Any], path: Path) -> None:
    """Empirical CDF of time-to-yield (measured interrupts), one step line per config."""
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    drawn = 0
    for name, cfg in report["configs"].items():
        values = sorted(
            s["time_to_yield_ms"] for s in cfg["scenarios"] if s["time_to_yield_ms"] is not None
        )
        if not values:
            continue
        n = len(values)
        xs = np.concatenate([[values[0]], values])
        ys = np.concatenate([[0.0], np.arange(1, n + 1) / n])
        ax.step(xs, ys, where="post", label=f"{name} (n={n})", linewidth=1.8)
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no measured interrupt", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("time to yield (ms)")
    ax.set_ylabel("fraction of measured interrupts")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.set_title("Time to yield: CDF")
    if drawn:
        ax.legend(loc="lower right")
    _save(fig, path)


def plot_false_yield_by_label(report: dict[str, Any], path: Path) -> None:
    """Grouped bars: false yield rate (%) per label (groups) and config (bars)."""
    labels = _labels(report)
    names = list(report["configs"])
    fig = Figure(figsize=(max(8.0, 1.1 * len(labels) * max(1, len(names)) ** 0.5 + 3), 5))
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        rates = report["configs"][name]["metrics"]["false_yield_rate"]
        heights = [np.nan if rates.get(lb) is None else 100.0 * rates[lb] for lb in labels]
        bars = ax.bar(x - 0.4 + width * (i + 0.5), heights, width, label=name)
        # Values on the bars: a 0 % bar must not look like a missing one.
        texts = ["" if np.isnan(h) else f"{h:.0f}" for h in heights]
        ax.bar_label(bars, labels=texts, fontsize=7, padding=1)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel("scenarios with a false yield (%)")
    ax.set_ylim(0, 105)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title("False yield rate by label")
    if names:
        ax.legend()
    _save(fig, path)


def plot_tradeoff(report: dict[str, Any], path: Path) -> None:
    """Each config as a point: false yields per agent-minute (x) vs time-to-yield p50/p95 (y)."""
    fig = Figure(figsize=(8, 5.5))
    ax = fig.add_subplot()
    for name, cfg in report["configs"].items():
        m = cfg["metrics"]
        fy = m.get("false_yields_per_agent_min")
        ttfy = m.get("time_to_yield_ms") or {}
        if fy is None or ttfy.get("p50") is None:
            continue
        ax.errorbar(
            [fy],
            [ttfy["p50"]],
            yerr=[[0], [max(0.0, (ttfy.get("p95") or ttfy["p50"]) - ttfy["p50"])]],
            fmt="o",
            capsize=3,
        )
        missed = m.get("missed_interrupt_rate")
        note = f"{name}\nmissed {100 * missed:.0f} %" if missed is not None else name
        ax.annotate(note, (fy, ttfy["p50"]), textcoords="offset points", xytext=(6, 4), fontsize=7)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("false yields per minute of agent audio")
    ax.set_ylabel("time to yield (ms): p50, bar to p95")
    ax.grid(True, alpha=0.3)
    ax.set_title("Trade-off: latency vs false yields (lower left is better)")
    _save(fig, path)


_STATE_COLORS = {
    SpeakerState.PENDING.value: "#dddddd",
    SpeakerState.PLAYING.value: "#4c9be8",
    SpeakerState.PAUSED.value: "#f2b134",
    SpeakerState.UNDERRUN.value: "#b07cc6",
    SpeakerState.CLEARED.value: "#e8544c",
    SpeakerState.DONE.value: "#7ac47a",
}


def _state_spans(states: Sequence[str]) -> list[tuple[str, int, int]]:
    """(state, first tick, tick count) runs."""
    spans: list[tuple[str, int, int]] = []
    for i, st in enumerate(states):
        if spans and spans[-1][0] == st:
            spans[-1] = (st, spans[-1][1], spans[-1][2] + 1)
        else:
            spans.append((st, i, 1))
    return spans


def plot_timeline(trace: ScenarioTrace, path: Path, *, title: str | None = None) -> None:
    """Levels, VAD, speaker state, yields, user markers and session events on one time axis.

    Time is in seconds relative to the agent's first audible sample.
    """
    rate = trace.sample_rate_hz
    tick = trace.tick_samples
    t0 = trace.first_audible_sample or 0

    def sec(sample: float) -> float:
        return (sample - t0) / rate

    fig = Figure(figsize=(12, 7.5))
    ax_lvl, ax_vad, ax_st = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4, 1.2]}
    )

    def tick_x(n: int) -> np.ndarray:
        return np.array([sec(i * tick) for i in range(n)])

    for levels, name, color in (
        (trace.agent_level_db, "agent (played)", "#1f77b4"),
        (trace.mic_level_db, "microphone", "#ff7f0e"),
    ):
        if levels:
            y = np.maximum(
                np.nan_to_num(np.asarray(levels, float), neginf=_LEVEL_FLOOR_DB), _LEVEL_FLOOR_DB
            )
            ax_lvl.step(tick_x(len(y)), y, where="post", label=name, linewidth=1.0, color=color)
    ax_lvl.set_ylabel("level (dBFS)")
    ax_lvl.set_ylim(_LEVEL_FLOOR_DB - 2, 3)

    if trace.vad_probability:
        vx = [sec(s) for s, _ in trace.vad_probability]
        vy = [p for _, p in trace.vad_probability]
        ax_vad.plot(vx, vy, ".", markersize=3, color="#2ca02c", label="VAD probability")
    ax_vad.set_ylabel("VAD p")
    ax_vad.set_ylim(-0.05, 1.05)

    for st, first, count in _state_spans(trace.speaker_states):
        ax_st.broken_barh(
            [(sec(first * tick), count * tick / rate)], (0.55, 0.4), color=_STATE_COLORS.get(st)
        )
    present = set(trace.speaker_states)
    for st, color in _STATE_COLORS.items():
        if st in present:
            ax_st.plot([], [], "s", color=color, label=st)
    ax_st.set_yticks([])
    ax_st.set_ylim(0, 1)
    ax_st.set_xlabel("time since first audible agent sample (s)")

    # Session events as small markers, their kind written above; three heights avoid overlaps.
    for k, ev in enumerate(trace.events):
        if "sample" not in ev:
            continue
        x = sec(ev["sample"])
        y = 0.12 + 0.12 * (k % 3)
        ax_st.plot([x], [y], "v", color="black", markersize=4)
        ax_st.annotate(
            str(ev.get("kind", "?")), (x, y), xytext=(2, 1), textcoords="offset points", fontsize=7
        )

    trace_end = len(trace.speaker_states) * tick
    for k, y in enumerate(find_yields(trace)):
        end = y.end_sample if y.end_sample is not None else trace_end
        for ax in (ax_lvl, ax_vad, ax_st):
            ax.axvspan(
                sec(y.start_sample),
                sec(end),
                color="#e8544c",
                alpha=0.15,
                lw=0,
                label=f"yield ({y.kind})" if ax is ax_lvl and k == 0 else None,
            )

    for sample, name, style in (
        (trace.user_onset_sample, "user onset", ":"),
        (trace.user_voiced_sample, "user voiced", "-"),
        (trace.user_end_sample, "user end", "--"),
    ):
        if sample is None:
            continue
        for ax in (ax_lvl, ax_vad, ax_st):
            ax.axvline(
                sec(sample),
                color="#2ca02c",
                linestyle=style,
                linewidth=1.2,
                label=name if ax is ax_lvl else None,
            )

    for ax in (ax_lvl, ax_vad):
        ax.grid(True, alpha=0.3)
    # Legends outside the axes on the right, so they never hide data.
    for ax in (ax_lvl, ax_vad, ax_st):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.suptitle(title or f"{trace.config} / {trace.scenario_id} ({trace.label})")
    _save(fig, path)
