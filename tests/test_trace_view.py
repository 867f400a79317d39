"""The decision-trace timeline: PNG and HTML page, from the CLI and from code."""

from __future__ import annotations

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
