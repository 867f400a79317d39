"""DecisionTrace: rows, privacy by default, incremental flush, bounded memory, crash reads."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from synthetic_call import FakeSession, ScriptedCall, run_call

from livekit_bargein import BargeIn
from livekit_bargein.debug_trace import (
    ENV_TRACE_DIR,
    DecisionTrace,
    read_trace,
    redact_reason,
)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _wait_for(pred: Any, timeout_s: float = 2.0) -> bool:
    """The writer thread writes asynchronously: poll briefly instead of sleeping blindly."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return bool(pred())


def test_rows_cover_every_window_and_decision(tmp_path: Path) -> None:
    bargein, session = BargeIn(profile="headset"), FakeSession()
    path = tmp_path / "call.jsonl"
    with DecisionTrace(bargein, path, session=session, meta={"scenario_id": "x"}):
        call = run_call(bargein, session)
    data = read_trace(path)
    assert data.header["profile"] == "headset"
    assert data.header["options"]["onset_ms"] == bargein.options.onset_ms
    assert isinstance(data.header["options"]["backchannel_words"], list)
    assert data.header["meta"] == {"scenario_id": "x"}
    assert len(data.frames) == round(call.t_ms / 32.0) == 200
    f = data.frames[-1]
    for key in ("prob", "threshold", "residual_echo_db", "double_talk", "noise_floor_db",
                "background_db", "state", "level_db", "raw_level_db", "ref_level_db"):  # fmt: skip
        assert key in f
    assert f["t_ms"] == call.t_ms and f["raw_level_db"] == f["level_db"] + 3.0
    # while the agent plays the threshold is the playback one, not the idle 0.5
    playing = [fr for fr in data.frames if fr["state"] == "speaking"]
    assert playing and all(fr["threshold"] >= bargein.options.playback_threshold_min
                           for fr in playing)  # fmt: skip
    actions = [d["action"] for d in data.decisions]
    assert actions == ["soft_yield", "resume", "soft_yield", "interrupt"]
    assert all(d["reason"] for d in data.decisions)
    assert data.end is not None and data.end["frames"] == 200 and data.end["decisions"] == 4
    assert data.dropped_lines == 0 and not data.truncated
    # the frame after a decision shows the state it led to
    yield_t = data.decisions[0]["t_ms"]
    assert next(fr for fr in data.frames if fr["t_ms"] == yield_t)["state"] == "soft_yield"


def test_no_transcript_text_by_default(tmp_path: Path) -> None:
    bargein, session = BargeIn(), FakeSession()
    path = tmp_path / "call.jsonl"
    with DecisionTrace(bargein, path, session=session):
        run_call(bargein, session)
    rows = path.read_text().split("\n", 1)[1]  # the header lists the backchannel lexicon
    assert "okay" not in rows and "wait" not in rows and "stop" not in rows
    data = read_trace(path)
    assert [(t["final"], t["n_words"]) for t in data.transcripts] == [(True, 1), (False, 2)]
    assert all("text" not in t for t in data.transcripts)
    # reasons carry counts, never the caller's words
    assert data.decisions[-1]["reason"] == "words: 2 non-backchannel"
    assert data.header["include_transcripts"] is False


def test_transcripts_when_enabled(tmp_path: Path) -> None:
    bargein, session = BargeIn(), FakeSession()
    path = tmp_path / "call.jsonl"
    trace = DecisionTrace(bargein, path, include_transcripts=True)
    trace.attach(session)
    run_call(bargein, session)
    trace.close()
    data = read_trace(path)
    assert [t["text"] for t in data.transcripts] == ["okay", "wait stop"]
    assert data.decisions[-1]["reason"] == "words: 2 non-backchannel"


def test_redact_reason_keeps_numbers_drops_words() -> None:
    assert redact_reason("quiet 480ms, words=['okay', 'yeah']") == "quiet 480ms, words=<2 words>"
    assert redact_reason('words: "don\'t stop"') == "words: <2 words>"
    assert redact_reason("onset p=0.99 thr=0.60 level=-20dB") == "onset p=0.99 thr=0.60 level=-20dB"


def test_rows_reach_the_file_each_second_without_close(tmp_path: Path) -> None:
    bargein, session = BargeIn(), FakeSession()
    path = tmp_path / "call.jsonl"
    trace = DecisionTrace(bargein, path)
    assert _lines(path)[0]["type"] == "header"  # on disk before any audio
    call = ScriptedCall(bargein, session)
    call.windows(20, prob=0.01, level_db=-70.0, agent=False)  # 640 ms: still buffered
    time.sleep(0.1)
    assert len(_lines(path)) == 1
    call.windows(80, prob=0.01, level_db=-70.0, agent=False)  # 3.2 s of audio in all
    assert _wait_for(lambda: len(_lines(path)) >= 1 + 90)
    # at most one second of audio is still in memory
    on_disk = [r for r in _lines(path) if r["type"] == "frame"]
    assert call.t_ms - on_disk[-1]["t_ms"] <= 1000.0
    trace.close()
    assert len(read_trace(path).frames) == 100


class _StalledFile:
    """A file whose writes block until released: a writer that fell behind."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.release = threading.Event()

    def write(self, s: str) -> int:
        self.release.wait(timeout=5)
        return int(self.inner.write(s))

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


def test_a_stalled_writer_drops_and_counts_instead_of_growing(tmp_path: Path) -> None:
    bargein, session = BargeIn(), FakeSession()
    path = tmp_path / "call.jsonl"
    trace = DecisionTrace(bargein, path, flush_every_ms=100.0, max_buffered_lines=8)
    stalled = _StalledFile(trace._file)
    trace._file = stalled
    call = ScriptedCall(bargein, session)
    call.windows(200, prob=0.01, level_db=-70.0, agent=False)
    # bounded whatever the writer does: the batch being filled, and what waits for the writer
    assert len(trace._buffer) <= 8 and trace._pending_lines <= 8
    assert trace.dropped_lines > 100
    stalled.release.set()
    call.windows(10, prob=0.01, level_db=-70.0, agent=False)
    trace.close()
    data = read_trace(path)
    assert data.dropped_lines == trace.dropped_lines
    assert len(data.frames) + data.dropped_lines == 210
    assert any(r["type"] == "dropped" for r in _lines(path))


def test_truncated_last_line_is_skipped(tmp_path: Path) -> None:
    bargein, session = BargeIn(), FakeSession()
    path = tmp_path / "call.jsonl"
    with DecisionTrace(bargein, path):
        ScriptedCall(bargein, session).windows(40, prob=0.01, level_db=-70.0, agent=False)
    text = path.read_text()
    cut = tmp_path / "crash.jsonl"
    cut.write_text(text[: text.rindex('"frames"')])  # the end row cut mid-write
    data = read_trace(cut)
    assert data.truncated and data.end is None and len(data.frames) == 40


def test_a_bad_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    bargein = BargeIn()
    path = tmp_path / "call.jsonl"
    with DecisionTrace(bargein, path):
        ScriptedCall(bargein, FakeSession()).windows(3, prob=0.01, level_db=-70.0, agent=False)
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:10]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=":2:"):
        read_trace(path)


def test_runtime_option_changes_are_recorded(tmp_path: Path) -> None:
    bargein = BargeIn()
    path = tmp_path / "call.jsonl"
    call = ScriptedCall(bargein, FakeSession())
    with DecisionTrace(bargein, path):
        call.windows(3, prob=0.01, level_db=-70.0, agent=False)
        bargein.update_options(profile="noisy")
        call.windows(3, prob=0.01, level_db=-70.0, agent=False)
    changes = read_trace(path).option_changes
    assert [c["profile"] for c in changes] == ["noisy"] and changes[0]["t_ms"] == 4 * 32.0


def test_close_stops_listening(tmp_path: Path) -> None:
    bargein = BargeIn()
    path = tmp_path / "call.jsonl"
    call = ScriptedCall(bargein, FakeSession())
    trace = DecisionTrace(bargein, path)
    call.windows(3, prob=0.01, level_db=-70.0, agent=False)
    trace.close()
    trace.close()  # idempotent
    call.windows(3, prob=0.01, level_db=-70.0, agent=False)
    assert len(read_trace(path).frames) == 3


def test_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_TRACE_DIR, raising=False)
    assert DecisionTrace.from_env(BargeIn()) is None
    monkeypatch.setenv(ENV_TRACE_DIR, str(tmp_path / "traces"))
    trace = DecisionTrace.from_env(BargeIn())
    assert trace is not None
    trace.close()
    assert trace.path.parent == tmp_path / "traces" and read_trace(trace.path).end is not None


def test_frames_carry_the_echo_path(tmp_path: Path) -> None:
    """Which delay the canceller found, and when: the moment AEC3 starts getting the reference."""
    import numpy as np

    from livekit_bargein.aec import AecFrame

    bargein, session = BargeIn(), FakeSession()
    path = tmp_path / "call.jsonl"
    window = np.zeros(512, np.float32)
    with DecisionTrace(bargein, path, session=session):
        bargein.observe_window(window, speech_prob=0.0, t_ms=32.0, window_ms=32.0)
        for delay_ms, gain_db, t_ms in ((None, 0.0, 64.0), (120.0, -15.0, 96.0)):
            f = AecFrame(
                clean=np.zeros(160, np.float32), mic_level_db=-30.0, ref_level_db=-20.0,
                clean_level_db=-60.0, echo_level_db=-35.0, echo_path_gain_db=gain_db,
                residual_echo_db=-60.0, erle_db=25.0, far_end_active=True, double_talk=False,
                delay_ms=delay_ms,
            )  # fmt: skip
            bargein.feed_aec_frame(f, -20.0)
            bargein.observe_window(window, speech_prob=0.0, t_ms=t_ms, window_ms=32.0)
    rows = [(fr["echo_delay_ms"], fr["echo_path_gain_db"]) for fr in read_trace(path).frames]
    assert rows == [(None, None), (None, 0.0), (120.0, -15.0)]
