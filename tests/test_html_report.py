"""report.html: metrics, plots, and timeline pages for the scenarios worth opening."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from synthetic_run import VARIANT, make_run_dir

from livekit_bargein.eval.html_report import write_html_report


def _section(text: str, heading: str) -> str:
    return text.split(f"<h2>{heading}</h2>", 1)[1].split("<h2>", 1)[0]


def test_page_shows_metrics_plots_and_problem_scenarios(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    page = write_html_report(run)
    assert page == run / "report.html"
    text = page.read_text()
    assert re.search(r'<img class="plot" src="ttfy_cdf\.png"', text)
    assert "tradeoff.png" not in text  # absent plots are not linked
    metrics = _section(text, "Metrics")
    # flattened as report.json has them; rates as percentages
    assert "time_to_yield_ms.p50" in metrics and "false_yield_rate.backchannel" in metrics
    assert "<td class=num>50.0 %</td>" in metrics and "<td class=num>191</td>" in metrics
    engine = _section(text, VARIANT)
    problems = engine.split("class=problems>", 1)[1].split("</table>", 1)[0]
    assert "interrupt-002" in problems and "missed interrupt" in problems
    assert "backchannel-001" in problems and "1 false yield" in problems
    assert "interrupt-001" not in problems
    assert "every scenario went as labelled" in _section(text, "livekit-default")


def test_problem_scenarios_get_a_timeline_page(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    text = write_html_report(run).read_text()
    hrefs = re.findall(r'href="([^"]+)"', text)
    timelines = sorted({unquote(h) for h in hrefs if h.endswith(".html")})
    assert timelines == [
        f"decision_traces/{VARIANT}/backchannel-001.html",
        f"decision_traces/{VARIANT}/interrupt-002.html",
    ]
    assert all("@" not in h and "=" not in h for h in hrefs)  # quoted
    for rel in timelines:  # every link resolves
        assert (run / rel).exists() and (run / rel).with_suffix(".png").exists()
    # the scenario that went well links its JSONL only
    assert not (run / "decision_traces" / VARIANT / "interrupt-001.html").exists()
    assert f"decision_traces/{VARIANT}/interrupt-001.jsonl" in {unquote(h) for h in hrefs}
    # ground truth from the harness' trace: 30720 samples at 16 kHz = 1.920 s
    missed = (run / timelines[1]).read_text()
    assert "missed interrupt" in missed
    assert "<td class=num>1.920</td><td>user voiced</td>" in missed


def test_trace_pages_are_capped(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    write_html_report(run, max_trace_pages=1)
    assert len(list((run / "decision_traces" / VARIANT).glob("*.html"))) == 1
