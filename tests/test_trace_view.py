"""The decision-trace timeline: PNG and HTML page, from the CLI and from code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from synthetic_call import FakeSession, ScriptedCall, run_call

from livekit_bargein import BargeIn
from livekit_bargein.cli import main
from livekit_bargein.debug_trace import DecisionTrace
from livekit_bargein.trace_view import Marker, render_trace


@pytest.fixture
def call_trace(tmp_path: Path) -> Path:
    bargein, session = BargeIn(), FakeSession()
    path = tmp_path / "call.jsonl"
    with DecisionTrace(bargein, path, session=session, meta={"scenario_id": "synthetic-01"}):
        run_call(bargein, session)
    return path


def test_cli_writes_png_and_page(call_trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "view"
    assert main(["trace", str(call_trace), "--out", str(out)]) == 0
    png, page = out / "call.png", out / "call.html"
    img = imread(png)
    assert img.shape[0] > 400 and img.shape[1] > 800
    # something was drawn: plenty of pixels that are neither white nor transparent
    rgb = img[..., :3]
    assert np.mean(np.any(rgb < 0.9, axis=-1)) > 0.02
    text = page.read_text()
    assert re.search(r'<img [^>]*src="call\.png"', text)
    # the decision table: one row per decision, in order, reasons escaped
    decisions = text.split("class=decisions", 1)[1].split("</table>", 1)[0]
    actions = re.findall(r"<tr><td class=num>[\d.]+</td><td>(\w+)</td>", decisions)
    assert actions == ["soft_yield", "resume", "soft_yield", "interrupt"]
    assert "words: 2 non-backchannel" in text  # counts, never the words
    assert "synthetic-01" in text


def test_markers_and_transcript_text_reach_the_page(tmp_path: Path) -> None:
    bargein, session = BargeIn(), FakeSession()
    path = tmp_path / "t.jsonl"
    with DecisionTrace(bargein, path, session=session, include_transcripts=True):
        run_call(bargein, session)
    r = render_trace(path, tmp_path / "v", markers=[Marker(1900.0, "user <voiced>")])
    text = r.html.read_text()
    assert "user &lt;voiced&gt;" in text and "<td>1.900</td>" not in text
    assert "<td class=num>1.900</td>" in text
    assert "wait stop" in text


def test_unclosed_trace_renders_with_a_warning(tmp_path: Path) -> None:
    bargein = BargeIn()
    path = tmp_path / "crashed.jsonl"
    trace = DecisionTrace(bargein, path, flush_every_ms=100.0)
    ScriptedCall(bargein, FakeSession()).windows(20, prob=0.01, level_db=-70.0, agent=False)
    trace._writer.join(timeout=0.2)  # let the writer catch up; never closed, as in a crash
    r = render_trace(path, tmp_path / "v")
    assert r.png.stat().st_size > 10_000
    assert "not closed" in r.html.read_text()
    trace.close()


def test_cli_rejects_a_file_that_is_not_a_trace(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "frame", "t_ms": 32}\n')
    assert main(["trace", str(bad), "--out", str(tmp_path / "v")]) == 2


def _purple_pixels(png: Path) -> int:
    # the near-end line (NEAR_END_COLOR, #9467bd) is the only colour with both red and blue well
    # over green; it is antialiased and blended over the state bands, so no exact match
    r, g, b = (imread(png)[..., i] for i in range(3))
    return int(np.sum((r > g + 0.12) & (b > g + 0.2)))


def test_near_end_share_is_drawn_when_the_trace_has_it(call_trace: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in call_trace.read_text().splitlines()]
    assert all(r.get("near_end_share") is None for r in rows if r["type"] == "frame")
    with_share = tmp_path / "shared.jsonl"
    with_share.write_text("".join(
        json.dumps({**r, "near_end_share": 0.9 if i % 20 < 10 else 0.05} if r["type"] == "frame"
                   else r) + "\n"
        for i, r in enumerate(rows)
    ))  # fmt: skip
    without = render_trace(call_trace, tmp_path / "a").png
    drawn = render_trace(with_share, tmp_path / "b").png
    assert _purple_pixels(without) < 20
    assert _purple_pixels(drawn) > 1000


def test_near_end_prob_is_drawn_when_the_trace_has_it(call_trace: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in call_trace.read_text().splitlines()]
    assert all(r.get("near_end_prob") is None for r in rows if r["type"] == "frame")
    with_prob = tmp_path / "prob.jsonl"
    with_prob.write_text("".join(
        json.dumps({**r, "near_end_prob": 0.95} if r["type"] == "frame" else r) + "\n"
        for r in rows
    ))  # fmt: skip
    without = render_trace(call_trace, tmp_path / "a").png
    drawn = render_trace(with_prob, tmp_path / "b").png
    assert _purple_pixels(without) < 20
    assert _purple_pixels(drawn) > 200
