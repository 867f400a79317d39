"""``report.html``: an evaluator run on one page, with links to each scenario's decision timeline.

Reads what the run already wrote (``report.json``, the PNG plots, ``timelines/``,
``decision_traces/CONFIG/ID.jsonl`` and ``traces/CONFIG/ID.json``) and writes nothing else
except the timeline pages of the scenarios worth opening (errors, missed interrupts, false
yields), rendered next to their JSONL. Metrics are shown as ``report.json`` has them, flattened,
so a metric added to the report needs no change here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..html_page import BASE_CSS, esc
from ..log import logger

PLOTS = ("ttfy_cdf.png", "tradeoff.png", "false_yield_by_label.png")
"""The run's summary plots, in page order (those present are shown)."""
DECISION_TRACES = "decision_traces"
SCENARIO_TRACES = "traces"

_CSS = BASE_CSS + """
img.plot { max-width: 100%; height: auto; border: 1px solid #ddd; margin: 0.3em 0; }
.bad { color: #b00020; }
"""
_e = esc


def _href(out_dir: Path, target: Path) -> str:
    # config names may hold '@', '=' and '+' (knob variants): quoted, relative to the page
    return quote(target.relative_to(out_dir).as_posix(), safe="/")


def _fmt(key: str, v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        if any(part.endswith("_rate") for part in key.split(".")):
            return f"{100.0 * v:.1f} %"
        return f"{v:.2f}" if abs(v) < 10 else f"{v:.0f}"
    return str(v)


def _flatten(d: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _metrics_table(configs: dict[str, Any]) -> str:
    names = list(configs)
    flat = {n: dict(_flatten(configs[n].get("metrics") or {})) for n in names}
    keys: list[str] = []
    for n in names:
        keys += [k for k in flat[n] if k not in keys]
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><th>{_e(k)}</th>"
        + "".join(f"<td class=num>{_e(_fmt(k, flat[n].get(k)))}</td>" for n in names)
        + "</tr>"
        for k in keys
    )
    return f"<table class=metrics><tr><th>metric</th>{head}</tr>{rows}</table>"


def _problem(s: dict[str, Any]) -> str | None:
    """Why a scenario deserves a look (None: it went as labelled)."""
    if s.get("error"):
        return f"error: {s['error']}"
    if s.get("missed"):
        return "missed interrupt"
    if s.get("false_yields"):
        n = int(s["false_yields"])
        return f"{n} false yield{'s' if n != 1 else ''}"
    return None


def _markers(scenario_trace: Path) -> list[Any]:
    """Ground truth from the harness' trace: same clock as the engine's (16 kHz samples)."""
    from ..trace_view import Marker

    try:
        t = json.loads(scenario_trace.read_text())
    except (OSError, ValueError):
        return []
    rate = float(t.get("sample_rate_hz") or 16_000)
    out = []
    for key, label in (
        ("first_audible_sample", "agent audible"),
        ("user_onset_sample", "user audio starts"),
        ("user_voiced_sample", "user voiced"),
        ("user_end_sample", "user ends"),
    ):
        if t.get(key) is not None:
            out.append(Marker(t_ms=1000.0 * t[key] / rate, label=label))
    return out


def _trace_links(
    out_dir: Path, config: str, s: dict[str, Any], problem: str | None, budget: list[int]
) -> str:
    """Links to the scenario's timeline page (rendered now for problem scenarios) and JSONL."""
    jsonl = out_dir / DECISION_TRACES / config / f"{s['id']}.jsonl"
    if not jsonl.exists():
        return ""
    page = jsonl.with_suffix(".html")
    if problem is not None and not page.exists() and budget[0] > 0:
        budget[0] -= 1
        from ..trace_view import render_trace

        try:
            render_trace(
                jsonl,
                jsonl.parent,
                markers=_markers(out_dir / SCENARIO_TRACES / config / f"{s['id']}.json"),
                title=f"{config} / {s['id']} ({s.get('label', '?')}): {problem}",
            )
        except (OSError, ValueError):
            logger.exception("could not render a decision trace", extra={"path": str(jsonl)})
    links = []
    if page.exists():
        links.append(f'<a href="{_href(out_dir, page)}">timeline</a>')
    links.append(f'<a href="{_href(out_dir, jsonl)}">jsonl</a>')
    return " ".join(links)


def _scenario_rows(
    out_dir: Path, config: str, scenarios: list[dict[str, Any]], budget: list[int]
) -> tuple[str, str]:
    """(rows of problem scenarios, rows of all scenarios)."""
    problems, everything = [], []
    for s in scenarios:
        problem = _problem(s)
        links = _trace_links(out_dir, config, s, problem, budget)
        row = (
            f"<tr><td>{_e(s.get('id'))}</td><td>{_e(s.get('label'))}</td>"
            f"<td class=num>{_e(_fmt('ttfy', s.get('time_to_yield_ms')))}</td>"
            f"<td{' class=bad' if problem else ''}>{_e(problem or 'ok')}</td>"
            f"<td>{links}</td></tr>"
        )
        everything.append(row)
        if problem:
            problems.append(row)
    return "".join(problems), "".join(everything)


_SCENARIO_HEAD = (
    "<tr><th>scenario</th><th>label</th><th>ttfy ms</th><th>outcome</th><th>trace</th></tr>"
)


def write_html_report(out_dir: Path, *, max_trace_pages: int = 300) -> Path:
    """Write ``out_dir/report.html`` from ``out_dir/report.json`` and the plots beside it."""
    out_dir = Path(out_dir)
    report = json.loads((out_dir / "report.json").read_text())
    configs: dict[str, Any] = report.get("configs") or {}
    run = report.get("run") or {}
    budget = [max_trace_pages]  # timeline pages rendered now, at most (each ~0.5 s)

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>barge-in evaluation</title><style>{_CSS}</style></head><body>",
        "<h1>barge-in evaluation</h1>",
    ]
    if run:
        parts.append(
            "<table class=run>"
            + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in run.items())
            + "</table>"
        )
    parts += ["<h2>Metrics</h2>", _metrics_table(configs), "<h2>Plots</h2>"]
    plots = [out_dir / p for p in PLOTS if (out_dir / p).exists()]
    plots += sorted((out_dir / "timelines").glob("*.png"))
    parts += [
        f'<p><img class="plot" src="{_href(out_dir, p)}" alt="{_e(p.stem)}"></p>' for p in plots
    ]
    if not plots:
        parts.append("<p>no plots in this run directory</p>")
    for name, cfg in configs.items():
        problems, everything = _scenario_rows(out_dir, name, cfg.get("scenarios") or [], budget)
        parts += [
            f"<h2>{_e(name)}</h2>",
            f"<h3>Scenarios to look at</h3><table class=problems>{_SCENARIO_HEAD}{problems}</table>"
            if problems
            else "<p>every scenario went as labelled</p>",
            f"<details><summary>all {len(cfg.get('scenarios') or [])} scenarios</summary>"
            f"<table class=scenarios>{_SCENARIO_HEAD}{everything}</table></details>",
        ]
    parts += [
        "<p>Any decision trace renders with "
        "<code>livekit-bargein trace decision_traces/CONFIG/ID.jsonl --out DIR</code>.</p>",
        "</body></html>\n",
    ]
    page = out_dir / "report.html"
    page.write_text("\n".join(parts), encoding="utf-8")
    return page
