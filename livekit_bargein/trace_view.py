"""Renders a decision trace (``debug_trace``) as a timeline: a PNG and an HTML page around it.

``livekit-bargein trace TRACE.jsonl --out DIR`` writes ``DIR/<stem>.png`` and ``DIR/<stem>.html``.
Needs matplotlib (the ``eval`` extra); draws on a bare ``Figure`` (Agg): no pyplot, no display.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .debug_trace import TraceData, read_trace
from .html_page import BASE_CSS, esc

LEVEL_FLOOR_DB = -90.0
"""Digital silence (-120 dBFS) and unknown levels are drawn at this level."""
NEAR_END_COLOR = "#9467bd"
"""Colour of the near-end share line in the probability panel."""

_STATE_COLORS = {
    "speaking": "#cfe3f7",
    "soft_yield": "#f9d9a0",
    "interrupted": "#f4b6b2",
}  # "listening" (no reply) is left blank
_ACTION_STYLES = {
    "soft_yield": ("#e08a00", "--", "soft yield"),
    "resume": ("#2ca02c", "-.", "resume"),
    "interrupt": ("#d62728", "-", "interrupt"),
}
_FLAG_ROWS = (  # (frame key, label, colour): the lanes of the bottom panel
    ("agent_audible", "agent audible", "#4c9be8"),
    ("double_talk", "double talk", "#b07cc6"),
    ("speaking", "caller speech", "#2ca02c"),
    ("aec_unsettled", "AEC re-converging", "#999999"),
)


@dataclass(frozen=True)
class Marker:
    """An extra vertical line on the timeline (e.g. the evaluator's ground-truth user onset)."""

    t_ms: float
    label: str


@dataclass(frozen=True)
class RenderedTrace:
    png: Path
    html: Path


def render_trace(
    trace_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    markers: Sequence[Marker] = (),
    title: str | None = None,
) -> RenderedTrace:
    """Write ``<out_dir>/<stem>.png`` and ``<out_dir>/<stem>.html`` (which shows the PNG)."""
    trace_path = Path(trace_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = read_trace(trace_path)
    title = title or _default_title(data, trace_path)
    png = out / f"{trace_path.stem}.png"
    page = out / f"{trace_path.stem}.html"
    plot_trace(data, png, markers=markers, title=title)
    page.write_text(trace_page(data, png.name, title=title, markers=markers), encoding="utf-8")
    return RenderedTrace(png=png, html=page)


def _default_title(data: TraceData, path: Path) -> str:
    meta = data.header.get("meta") or {}
    parts = [str(meta[k]) for k in ("config", "scenario_id", "label") if meta.get(k)]
    return " / ".join(parts) if parts else path.stem


def _series(frames: list[dict[str, Any]], key: str, floor: float | None = None) -> np.ndarray:
    y = np.array([np.nan if f.get(key) is None else float(f[key]) for f in frames], float)
    return np.maximum(np.nan_to_num(y, nan=floor), floor) if floor is not None else y


def _runs(values: Sequence[Any]) -> list[tuple[Any, int, int]]:
    """(value, first index, end index) of each run of equal values."""
    runs: list[tuple[Any, int, int]] = []
    for i, v in enumerate(values):
        if runs and runs[-1][0] == v:
            runs[-1] = (v, runs[-1][1], i + 1)
        else:
            runs.append((v, i, i + 1))
    return runs


def plot_trace(
    data: TraceData, png_path: Path, *, markers: Sequence[Marker] = (), title: str = ""
) -> None:
    """Levels, probability vs threshold over the controller state, flags, and the decisions."""
    frames = data.frames
    t_s = np.array([f["t_ms"] / 1000.0 for f in frames], float)
    # each frame covers the window that ends at t_ms: spans start one window earlier
    window_s = float(np.median(np.diff(t_s))) if len(t_s) > 1 else 0.032
    starts = t_s - window_s
    duration_s = float(t_s[-1] - starts[0]) if len(t_s) else 0.0
    fig = Figure(figsize=(min(40.0, max(12.0, duration_s / 6.0)), 8.5))
    ax_lvl, ax_p, ax_flags = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2.2, 1.1]}
    )

    if frames:
        for key, label, style in (
            ("ref_level_db", "agent audio (reference)", {"color": "#1f77b4", "lw": 1.1}),
            ("raw_level_db", "microphone (raw)", {"color": "#ff7f0e", "lw": 1.0, "alpha": 0.8}),
            ("level_db", "microphone (echo-cancelled)", {"color": "#2ca02c", "lw": 1.1}),
            ("noise_floor_db", "noise floor", {"color": "#7f7f7f", "lw": 1.0, "ls": "--"}),
            ("residual_echo_db", "residual echo estimate", {"color": "#d62728", "lw": 0.9,
                                                              "ls": ":"}),
        ):  # fmt: skip
            y = _series(frames, key)
            if np.isfinite(y).any():
                y = np.maximum(np.where(np.isfinite(y), y, np.nan), LEVEL_FLOOR_DB)
                ax_lvl.step(t_s, y, where="pre", label=label, **style)
    ax_lvl.set_ylabel("level (dBFS)")
    ax_lvl.set_ylim(LEVEL_FLOOR_DB - 2, 3)

    for state, first, end in _runs([f.get("state") for f in frames]):
        if state in _STATE_COLORS:
            ax_p.axvspan(starts[first], t_s[end - 1], color=_STATE_COLORS[state], lw=0)
    present = {f.get("state") for f in frames}
    for state, color in _STATE_COLORS.items():
        if state in present:
            ax_p.fill_between([], [], color=color, label=f"state: {state}")
    if frames:
        ax_p.step(t_s, _series(frames, "threshold"), where="pre", color="black", lw=1.2,
                  label="active threshold")  # fmt: skip
        ax_p.plot(t_s, _series(frames, "prob"), ".-", color="#2ca02c", lw=0.8, markersize=2.5,
                  label="Silero probability")  # fmt: skip
        share = _series(frames, "near_end_share")
        if np.isfinite(share).any():  # traces from before the cue (or with AEC off) have none
            ax_p.step(t_s, share, where="pre", color=NEAR_END_COLOR, lw=1.0, ls="--",
                      label="near-end share (sound the agent's audio cannot explain)")  # fmt: skip
        ne_prob = _series(frames, "near_end_prob")
        if np.isfinite(ne_prob).any():  # read only while the agent's echo may be in the mic
            ax_p.plot(t_s, ne_prob, ".", color=NEAR_END_COLOR, markersize=2.5,
                      label="Silero on the near-end estimate (the agent taken out)")  # fmt: skip
    ax_p.set_ylabel("speech probability")
    ax_p.set_ylim(-0.05, 1.08)  # a blocked threshold (1.01) stays visible

    for row, (key, _label, color) in enumerate(_FLAG_ROWS):
        y0 = len(_FLAG_ROWS) - 1 - row
        spans = [
            (starts[first], t_s[end - 1] - starts[first])
            for on, first, end in _runs([bool(f.get(key)) for f in frames])
            if on
        ]
        ax_flags.broken_barh(spans, (y0 + 0.2, 0.6), color=color)
    ax_flags.set_yticks(range(len(_FLAG_ROWS)), [lb for _, lb, _ in reversed(_FLAG_ROWS)])
    ax_flags.set_ylim(-0.1, len(_FLAG_ROWS) + 0.1)
    # transcripts: a marker each (hollow: interim); only finals are labelled, interims come
    # every ~250 ms and their labels would overlap. The page's table has them all.
    y_tr = len(_FLAG_ROWS) - 0.05
    for tr in data.transcripts:
        x = tr["t_ms"] / 1000.0
        final = bool(tr.get("final"))
        ax_flags.plot([x], [y_tr], "v", color="black", markersize=5, fillstyle="full" if final
                      else "none")  # fmt: skip
        if final:
            n = tr.get("n_words")
            note = tr.get("text") or f"{n} word{'' if n == 1 else 's'}"
            ax_flags.annotate(f"final: {note}", (x, y_tr), xytext=(3, -9),
                              textcoords="offset points", fontsize=7)  # fmt: skip
    ax_flags.set_xlabel("time (s, microphone sample clock)")

    seen: set[str] = set()
    for d in data.decisions:
        color, ls, label = _ACTION_STYLES.get(d["action"], ("black", "-", d["action"]))
        for ax in (ax_lvl, ax_p, ax_flags):
            ax.axvline(d["t_ms"] / 1000.0, color=color, ls=ls, lw=1.4,
                       label=label if ax is ax_p and label not in seen else None)  # fmt: skip
        seen.add(label)
    for k, m in enumerate(markers):
        for ax in (ax_lvl, ax_p, ax_flags):
            ax.axvline(m.t_ms / 1000.0, color="#555555", ls=(0, (1, 2)), lw=1.2,
                       label="markers (labelled)" if ax is ax_lvl and k == 0 else None)  # fmt: skip
        ax_lvl.annotate(m.label, (m.t_ms / 1000.0, 0), xytext=(2, -10 - 9 * (k % 3)),
                        textcoords="offset points", fontsize=7, color="#555555")  # fmt: skip

    if not frames:
        ax_p.text(0.5, 0.5, "no frames in this trace", ha="center", va="center",
                  transform=ax_p.transAxes)  # fmt: skip
    for ax in (ax_lvl, ax_p):
        ax.grid(True, alpha=0.3)
    for ax in (ax_lvl, ax_p):  # legends outside the axes: they never hide data
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.savefig(png_path, dpi=110, bbox_inches="tight")


# -- the page --------------------------------------------------------------------------------------

_CSS = BASE_CSS + """
img.timeline { max-width: 100%; height: auto; border: 1px solid #ddd; }
.warn { color: #a15c00; }
"""
_e = esc


def _fmt_s(t_ms: float | None) -> str:
    return "" if t_ms is None or not math.isfinite(t_ms) else f"{t_ms / 1000.0:.3f}"


def trace_page(
    data: TraceData, png_name: str, *, title: str, markers: Sequence[Marker] = ()
) -> str:
    """The HTML page: summary, the timeline image (relative link) and the decision table."""
    h = data.header
    counts = {a: sum(1 for d in data.decisions if d["action"] == a) for a in _ACTION_STYLES}
    duration = data.frames[-1]["t_ms"] if data.frames else 0.0
    summary = [
        ("profile", h.get("profile")),
        ("started", h.get("started_at")),
        ("audio", f"{duration / 1000.0:.1f} s, {len(data.frames)} windows"),
        ("decisions", ", ".join(f"{n} {a.replace('_', ' ')}" for a, n in counts.items())),
        *((str(k), v) for k, v in (h.get("meta") or {}).items()),
    ]
    warnings = []
    if data.dropped_lines:
        warnings.append(f"{data.dropped_lines} lines dropped (the writer fell behind)")
    if data.truncated:
        warnings.append("the last line was cut mid-write (crash?)")
    if data.end is None:
        warnings.append("no end row: the trace was not closed (crash, or still running)")
    rows = "\n".join(
        f"<tr><td class=num>{_fmt_s(d['t_ms'])}</td><td>{_e(d['action'])}</td>"
        f"<td>{_e(d.get('reason', ''))}</td><td>{_e(d.get('state', ''))}</td>"
        f"<td class=num>{_e(d.get('threshold', ''))}</td></tr>"
        for d in data.decisions
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        "<table class=summary>"
        + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in summary)
        + "</table>",
        *(f'<p class="warn">{_e(w)}</p>' for w in warnings),
        f'<p><img class="timeline" src="{_e(png_name)}" alt="decision timeline"></p>',
        f"<h2>Decisions ({len(data.decisions)})</h2>",
        "<table class=decisions><thead><tr><th>t (s)</th><th>action</th><th>reason</th>"
        f"<th>state</th><th>threshold</th></tr></thead><tbody>{rows}</tbody></table>",
    ]
    if markers:
        parts.append(
            "<h2>Markers</h2><table class=markers><tr><th>t (s)</th><th>what</th></tr>"
            + "".join(
                f"<tr><td class=num>{_fmt_s(m.t_ms)}</td><td>{_e(m.label)}</td></tr>"
                for m in markers
            )
            + "</table>"
        )
    if data.transcripts:
        parts.append(
            "<h2>Transcripts</h2><table class=transcripts><tr><th>t (s)</th><th>final</th>"
            "<th>words</th><th>text</th></tr>"
            + "".join(
                f"<tr><td class=num>{_fmt_s(t['t_ms'])}</td><td>{_e(t.get('final'))}</td>"
                f"<td class=num>{_e(t.get('n_words'))}</td>"
                f"<td>{_e(t.get('text', '(not recorded)'))}</td></tr>"
                for t in data.transcripts
            )
            + "</table>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)
