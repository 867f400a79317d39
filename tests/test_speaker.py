"""SimSpeaker: sample-exact accounting under pause, resume and clear."""

from __future__ import annotations

import numpy as np
from livekit import rtc

from livekit_bargein.eval.speaker import SimSpeaker

RATE = 16_000


def _frame(n: int, value: int = 1000) -> rtc.AudioFrame:
    return rtc.AudioFrame(np.full(n, value, np.int16).tobytes(), RATE, 1, n)


async def test_plays_in_order_and_finishes() -> None:
    spk = SimSpeaker(sample_rate_hz=RATE)
    finished = []
    spk.on("playback_finished", finished.append)
    await spk.capture_frame(_frame(400))
    spk.flush()
    outs = [spk.pull(160) for _ in range(4)]
    assert spk.first_played == [160, 160, 80, 0]
    assert spk.states == ["playing", "playing", "playing", "done"]
    assert np.allclose(outs[2][:80], 1000 / 32768) and np.all(outs[2][80:] == 0)
    assert len(finished) == 1 and not finished[0].interrupted
    assert abs(finished[0].playback_position - 400 / RATE) < 1e-9


async def test_pause_freezes_playhead_and_resume_continues() -> None:
    spk = SimSpeaker(sample_rate_hz=RATE)
    ramp = np.arange(800, dtype=np.int16)
    await spk.capture_frame(rtc.AudioFrame(ramp.tobytes(), RATE, 1, 800))
    spk.flush()
    a = spk.pull(160)
    spk.pause()
    paused = [spk.pull(160) for _ in range(3)]
    spk.resume()
    b = spk.pull(160)
    assert all(np.all(p == 0) for p in paused)
    assert spk.states[1:4] == ["paused"] * 3
    # resumes exactly at sample 160: nothing skipped, nothing repeated
    assert np.allclose(b * 32768, ramp[160:320])
    assert np.allclose(a * 32768, ramp[:160])


async def test_clear_stops_and_reports_position() -> None:
    spk = SimSpeaker(sample_rate_hz=RATE)
    finished = []
    spk.on("playback_finished", finished.append)
    await spk.capture_frame(_frame(1600))
    spk.pull(160)
    spk.pull(160)
    spk.clear_buffer()
    await spk.capture_frame(_frame(160))  # in flight after the clear: dropped
    spk.flush()
    spk.pull(160)
    assert finished and finished[0].interrupted
    assert abs(finished[0].playback_position - 320 / RATE) < 1e-9
    assert spk.states[-1] == "cleared"
    assert sum(spk.first_played) == 320


async def test_underrun_is_not_pause() -> None:
    spk = SimSpeaker(sample_rate_hz=RATE)
    await spk.capture_frame(_frame(160))
    spk.pull(160)
    spk.pull(160)  # segment open, nothing buffered
    await spk.capture_frame(_frame(160))
    spk.flush()
    spk.pull(160)
    assert spk.states == ["playing", "underrun", "playing"]


async def test_second_segment_is_played_but_not_recorded_as_first() -> None:
    spk = SimSpeaker(sample_rate_hz=RATE)
    await spk.capture_frame(_frame(160))
    spk.flush()
    spk.pull(160)
    await spk.capture_frame(_frame(320, 2000))
    spk.flush()
    out = spk.pull(160)
    assert np.allclose(out, 2000 / 32768)
    assert spk.first_played == [160, 0]
    assert spk.states[-1] == "done"
