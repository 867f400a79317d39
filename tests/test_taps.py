"""PlaybackTap over a recording sink, EchoCancelledInput over a scripted microphone (real APM)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.voice import io

from livekit_bargein.aec import EchoCanceller
from livekit_bargein.taps import EchoCancelledInput, PlaybackTap

# -- fakes --------------------------------------------------------------------------------------


class RecordingSink(io.AudioOutput):
    """Leaf sink: records frames, honours pause, reports playback start/finish like a player."""

    def __init__(self, *, sample_rate_hz: int | None = None) -> None:
        super().__init__(
            label="RecordingSink",
            capabilities=io.AudioOutputCapabilities(pause=True),
            sample_rate=sample_rate_hz,
        )
        self.frames: list[rtc.AudioFrame] = []
        self.paused = False
        self.pause_calls = 0
        self.resume_calls = 0
        self.cleared = 0
        self._playing = False
        self._segment_s = 0.0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self.frames.append(frame)
        self._segment_s += frame.duration
        if not self._playing:
            self._playing = True
            self.on_playback_started(created_at=time.time())

    def flush(self) -> None:
        super().flush()
        self._finish(interrupted=False)

    def clear_buffer(self) -> None:
        self.cleared += 1
        self._finish(interrupted=True)

    def pause(self) -> None:
        self.pause_calls += 1
        self.paused = True

    def resume(self) -> None:
        self.resume_calls += 1
        self.paused = False

    def _finish(self, *, interrupted: bool) -> None:
        if not self._playing:
            return
        self._playing = False
        position_s, self._segment_s = self._segment_s, 0.0
        self.on_playback_finished(playback_position=position_s, interrupted=interrupted)


class ScriptedSource(io.AudioInput):
    """Microphone that replays a fixed list of frames, then ends."""

    def __init__(self, frames: list[rtc.AudioFrame]) -> None:
        super().__init__(label="ScriptedSource")
        self._frames = list(frames)

    async def __anext__(self) -> rtc.AudioFrame:
        if not self._frames:
            raise StopAsyncIteration
        return self._frames.pop(0)


# -- helpers ------------------------------------------------------------------------------------


def _pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def _frames(
    x: np.ndarray, *, rate_hz: int, frame_ms: float, num_channels: int = 1
) -> list[rtc.AudioFrame]:
    """Cut ``x`` (float, [samples] or [samples, channels]) into int16 frames of ``frame_ms``."""
    pcm = _pcm(x).reshape(len(x), num_channels)
    n = int(round(rate_hz * frame_ms / 1000))
    return [
        rtc.AudioFrame(pcm[i : i + n].tobytes(), rate_hz, num_channels, len(pcm[i : i + n]))
        for i in range(0, len(pcm), n)
    ]


def _sine(freq_hz: float, *, rate_hz: int, duration_s: float, amp: float = 0.5) -> np.ndarray:
    t_s = np.arange(int(rate_hz * duration_s)) / rate_hz
    return (amp * np.sin(2 * np.pi * freq_hz * t_s)).astype(np.float32)


async def _play(tap: PlaybackTap, x: np.ndarray, *, rate_hz: int) -> None:
    for f in _frames(x, rate_hz=rate_hz, frame_ms=20):
        await tap.capture_frame(f)


# -- PlaybackTap --------------------------------------------------------------------------------


async def test_frames_pass_through_unchanged() -> None:
    sink = RecordingSink(sample_rate_hz=24_000)
    tap = PlaybackTap(sink)
    frames = _frames(_sine(300, rate_hz=24_000, duration_s=0.2), rate_hz=24_000, frame_ms=20)
    for f in frames:
        await tap.capture_frame(f)
    assert [bytes(f.data) for f in sink.frames] == [bytes(f.data) for f in frames]
    assert tap.sample_rate == 24_000


async def test_reference_resampled_on_mic_clock() -> None:
    """1 s captured at 24 kHz reads back as 100 full 10 ms frames at 16 kHz, then None."""
    tap = PlaybackTap(RecordingSink(sample_rate_hz=24_000))
    assert tap.read_reference(160, 16_000) is None  # nothing played yet
    freq_hz = 440.0
    await _play(tap, _sine(freq_hz, rate_hz=24_000, duration_s=1.0), rate_hz=24_000)
    assert tap.playing

    reads = [tap.read_reference(160, 16_000) for _ in range(100)]
    assert all(r is not None and r.shape == (160,) and r.dtype == np.float32 for r in reads)
    ref = np.concatenate([r for r in reads if r is not None])
    assert tap.segment_played_s == pytest.approx(1.0)
    assert tap.read_reference(160, 16_000) is None  # drained
    # every 10 ms carries the tone (a bursty resampler leaves silent frames), at the right pitch
    rms = np.sqrt(np.mean(ref.reshape(100, 160)[1:] ** 2, axis=1))
    assert rms.min() > 0.3
    spectrum = np.abs(np.fft.rfft(ref[800:15_200]))
    peak_hz = np.argmax(spectrum) * 16_000 / len(ref[800:15_200])
    assert peak_hz == pytest.approx(freq_hz, abs=3.0)


async def test_reference_upsampled_for_48k_mic() -> None:
    tap = PlaybackTap(RecordingSink(sample_rate_hz=24_000))
    await _play(tap, _sine(440, rate_hz=24_000, duration_s=0.1), rate_hz=24_000)
    reads = [tap.read_reference(480, 48_000) for _ in range(10)]
    assert [None if r is None else len(r) for r in reads] == [480] * 10
    assert tap.read_reference(480, 48_000) is None


async def test_hold_release_exact_sample() -> None:
    """Equal rates: hold pauses the sink and the reference; release continues at the same sample."""
    rate_hz = 16_000
    sink = RecordingSink(sample_rate_hz=rate_hz)
    tap = PlaybackTap(sink)
    # distinct sample values, so a skip or a repeat cannot go unnoticed
    x = ((np.arange(rate_hz) % 20_000) - 10_000).astype(np.float32) / 32767.0
    await _play(tap, x, rate_hz=rate_hz)
    expected = _pcm(x).astype(np.float32) / 32768.0

    first = np.concatenate([tap.read_reference(160, rate_hz) for _ in range(5)])  # type: ignore[misc]
    np.testing.assert_array_equal(first, expected[:800])

    tap.hold()
    assert tap.held and sink.paused and not tap.playing
    assert tap.read_reference(160, rate_hz) is None
    assert tap.read_reference(160, rate_hz) is None
    assert tap.segment_played_s == pytest.approx(0.05)

    tap.release()
    assert not tap.held and not sink.paused
    after = tap.read_reference(160, rate_hz)
    assert after is not None
    np.testing.assert_array_equal(after, expected[800:960])


async def test_timed_text_is_recorded_per_segment_and_reported_on_finish() -> None:
    from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT
    from livekit.agents.voice.io import TimedString

    rate_hz = 16_000
    sink = RecordingSink(sample_rate_hz=rate_hz)
    tap = PlaybackTap(sink)
    records = []
    tap.on_playback_record = records.append
    frames = _frames(_sine(300, rate_hz=rate_hz, duration_s=2.0), rate_hz=rate_hz, frame_ms=20)
    # word timestamps on the first frame; a sentence without a start time on frame 50 (1.0 s)
    frames[0].userdata[USERDATA_TIMED_TRANSCRIPT] = [
        TimedString("Hello ", start_time=0.0, end_time=0.3),
        TimedString("there. ", start_time=0.35, end_time=0.8),
    ]
    frames[50].userdata[USERDATA_TIMED_TRANSCRIPT] = [TimedString("How are you? ")]
    for f in frames:
        await tap.capture_frame(f)
    for _ in range(40):  # 0.4 s of playout on the mic clock
        tap.read_reference(160, rate_hz)
    # played or about to play (0.5 s ahead): "How" starts at 1.0 s
    assert tap.recent_spoken_text(window_s=8.0) == "Hello there. "
    assert tap.recent_spoken_text(window_s=0.01) == ""  # both words started before 0.39 s
    tap.clear_buffer()  # the sink reports the interrupted playback
    assert len(records) == 1 and records[0] is tap.last_playback
    rec = records[0]
    assert rec.interrupted and rec.audio_s == pytest.approx(2.0)
    assert [(t.text, t.start_s) for t in rec.spoken] == [
        ("Hello ", 0.0), ("there. ", 0.35), ("How are you? ", pytest.approx(1.0)),
    ]
    # the next segment's text starts afresh
    await _play(tap, _sine(300, rate_hz=rate_hz, duration_s=0.1), rate_hz=rate_hz)
    assert tap._spoken == []


async def test_hold_and_release_are_idempotent() -> None:
    sink = RecordingSink()
    tap = PlaybackTap(sink)
    tap.hold()
    tap.hold()
    tap.release()
    tap.release()
    assert (sink.pause_calls, sink.resume_calls) == (1, 1)


async def test_clear_buffer_drops_reference_and_hold() -> None:
    sink = RecordingSink(sample_rate_hz=16_000)
    tap = PlaybackTap(sink)
    await _play(tap, _sine(300, rate_hz=16_000, duration_s=0.5), rate_hz=16_000)
    assert tap.read_reference(160, 16_000) is not None
    tap.hold()
    tap.clear_buffer()
    assert sink.cleared == 1
    assert not tap.held and not sink.paused  # the next reply must be audible
    assert tap.read_reference(160, 16_000) is None

    # the next segment plays and is referenced again
    await _play(tap, _sine(300, rate_hz=16_000, duration_s=0.1), rate_hz=16_000)
    assert tap.read_reference(160, 16_000) is not None


async def test_flush_ends_segment() -> None:
    tap = PlaybackTap(RecordingSink(sample_rate_hz=16_000))
    await _play(tap, _sine(300, rate_hz=16_000, duration_s=0.1), rate_hz=16_000)
    tap.flush()  # this sink reports the segment finished at once
    assert tap.read_reference(160, 16_000) is None
    ev = await tap.wait_for_playout()
    assert not ev.interrupted


async def test_session_pause_while_held_survives_release() -> None:
    sink = RecordingSink(sample_rate_hz=16_000)
    tap = PlaybackTap(sink)
    await _play(tap, _sine(300, rate_hz=16_000, duration_s=0.5), rate_hz=16_000)

    tap.hold()
    tap.pause()  # the session pauses too (e.g. its own false-interruption handling)
    tap.release()
    assert sink.paused
    assert tap.read_reference(160, 16_000) is None

    tap.resume()
    assert not sink.paused
    assert tap.read_reference(160, 16_000) is not None


async def test_session_resume_while_held_stays_paused() -> None:
    sink = RecordingSink(sample_rate_hz=16_000)
    tap = PlaybackTap(sink)
    await _play(tap, _sine(300, rate_hz=16_000, duration_s=0.5), rate_hz=16_000)
    tap.pause()
    tap.hold()
    tap.resume()  # the session's resume must not undo the engine's hold
    assert sink.paused
    assert tap.read_reference(160, 16_000) is None
    tap.release()
    assert not sink.paused
    assert tap.read_reference(160, 16_000) is not None


# -- EchoCancelledInput -------------------------------------------------------------------------


async def _drain(inp: io.AudioInput) -> list[rtc.AudioFrame]:
    return [f async for f in inp]


def _noise(rate_hz: int, duration_s: float, *, channels: int = 1, amp: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(7)
    shape = (int(rate_hz * duration_s), channels) if channels > 1 else (int(rate_hz * duration_s),)
    return (amp * rng.standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize(("processing_rate_hz", "out_rate_hz"), [(16_000, 16_000), (None, 48_000)])
async def test_input_48k_stereo_to_mono(processing_rate_hz: int | None, out_rate_hz: int) -> None:
    """By default a 48 kHz microphone is processed (and handed on) at 16 kHz; None keeps 48."""
    x = _noise(48_000, 0.5, channels=2)
    frames = _frames(x, rate_hz=48_000, frame_ms=50, num_channels=2)
    inp = EchoCancelledInput(
        ScriptedSource(frames), tap=None, processing_rate_hz=processing_rate_hz
    )
    out = await _drain(inp)
    assert all(f.sample_rate == out_rate_hz and f.num_channels == 1 for f in out)
    assert [f.samples_per_channel for f in out] == [out_rate_hz // 20] * 10
    assert inp.frames_processed == 50


async def test_input_processing_rate_names_a_bad_rate() -> None:
    with pytest.raises(ValueError, match="22050"):
        EchoCancelledInput(ScriptedSource([]), tap=None, processing_rate_hz=22_050)


async def test_input_48k_cancels_echo_at_16k(speech: dict[str, np.ndarray]) -> None:
    """A 48 kHz stereo microphone with the agent's echo (played at 24 kHz, 120 ms late, -6 dB):
    the canceller runs at 16 kHz on the resampled microphone and removes the echo."""
    from scipy import signal

    far16 = speech["far"][: 16_000 * 8]
    tap = PlaybackTap(RecordingSink(sample_rate_hz=24_000))
    await _play(tap, signal.resample_poly(far16, 3, 2).astype(np.float32), rate_hz=24_000)
    delay_16k = int(0.12 * 16_000)
    echo16 = np.zeros(len(far16), np.float32)
    echo16[delay_16k:] = far16[: len(far16) - delay_16k] * 10 ** (-6 / 20)
    echo48 = signal.resample_poly(echo16, 3, 1).astype(np.float32)
    noise = _noise(48_000, len(echo48) / 48_000, amp=1e-3)[: len(echo48)]
    mic = np.stack([echo48 + noise, echo48 + noise], axis=1)
    inp = EchoCancelledInput(
        ScriptedSource(_frames(mic, rate_hz=48_000, frame_ms=20, num_channels=2)), tap=tap
    )
    out = await _drain(inp)
    assert all(f.sample_rate == 16_000 for f in out)
    clean = np.concatenate([np.frombuffer(f.data, np.int16) for f in out]) / 32768.0
    assert len(clean) == len(echo16)
    tail = slice(16_000 * 4, None)  # after convergence
    erle_db = 10 * np.log10(np.sum(echo16[tail] ** 2.0) / np.sum(clean[tail] ** 2))
    assert erle_db >= 25.0, erle_db
    assert inp._aec is not None and inp._aec.delay_ms is not None
    assert abs(inp._aec.delay_ms - 120.0) <= 10.0


async def test_input_8k() -> None:
    frames = _frames(_noise(8_000, 0.2), rate_hz=8_000, frame_ms=20)
    out = await _drain(EchoCancelledInput(ScriptedSource(frames), tap=None))
    assert all(f.sample_rate == 8_000 and f.num_channels == 1 for f in out)
    assert sum(f.samples_per_channel for f in out) == 1600


async def test_input_unsupported_rate_names_it() -> None:
    frames = _frames(_noise(44_100, 0.01), rate_hz=44_100, frame_ms=10)
    inp = EchoCancelledInput(ScriptedSource(frames), tap=None)
    with pytest.raises(ValueError, match="44100"):
        await inp.__anext__()


async def test_input_short_frames_are_buffered() -> None:
    """3 ms frames: nothing comes out until 10 ms are in, and no sample is lost."""
    frames = _frames(_noise(48_000, 0.3), rate_hz=48_000, frame_ms=3)  # 144 samples each
    assert sum(f.samples_per_channel for f in frames) == 14_400
    inp = EchoCancelledInput(ScriptedSource(frames), tap=None)
    out = await _drain(inp)
    assert sum(f.samples_per_channel for f in out) == 4_800  # at the 16 kHz processing rate
    assert all(f.samples_per_channel % 160 == 0 for f in out)
    assert inp.frames_processed == 30


async def test_input_empty_frame_is_skipped() -> None:
    frames = [
        rtc.AudioFrame(b"", 16_000, 1, 0),
        *_frames(_noise(16_000, 0.02), rate_hz=16_000, frame_ms=10),
    ]
    out = await _drain(EchoCancelledInput(ScriptedSource(frames), tap=None))
    assert [f.samples_per_channel for f in out] == [160, 160]


@pytest.mark.parametrize(("aec_rate_hz", "out_rate_hz"), [(16_000, 16_000), (None, 48_000)])
async def test_input_rate_follows_the_options(aec_rate_hz: int | None, out_rate_hz: int) -> None:
    from livekit_bargein import BargeIn, BargeInOptions

    engine = BargeIn(options=BargeInOptions(aec_rate_hz=aec_rate_hz))
    frames = _frames(_noise(48_000, 0.1), rate_hz=48_000, frame_ms=10)
    out = await _drain(engine.wrap_input(ScriptedSource(frames)))
    assert {f.sample_rate for f in out} == {out_rate_hz}


async def test_input_consumes_reference_on_mic_clock() -> None:
    """Each 10 ms of microphone consumes 10 ms of the tap's reference, whatever the rates."""
    tap = PlaybackTap(RecordingSink(sample_rate_hz=24_000))
    await _play(tap, _sine(300, rate_hz=24_000, duration_s=1.0), rate_hz=24_000)
    frames = _frames(
        _noise(48_000, 0.5, channels=2, amp=0.01), rate_hz=48_000, frame_ms=50, num_channels=2
    )
    seen: list[float] = []
    inp = EchoCancelledInput(
        ScriptedSource(frames), tap=tap, on_frame=lambda f, _ref_db: seen.append(f.ref_level_db)
    )
    out = await _drain(inp)
    assert sum(f.samples_per_channel for f in out) == 8_000  # 0.5 s at 16 kHz
    assert tap.segment_played_s == pytest.approx(0.5)
    assert len(seen) == 50 and min(seen) > -20.0  # a -9 dBFS tone in every frame


def test_canceller_zeroes_and_counts_nan() -> None:
    """NaN cannot arrive as int16 PCM; the canceller itself zeroes and counts bad frames."""
    aec = EchoCanceller(sample_rate_hz=16_000)
    bad = np.full(160, np.nan, np.float32)
    f1 = aec.process(bad, None)
    f2 = aec.process(np.zeros(160, np.float32), np.full(160, np.inf, np.float32))
    f3 = aec.process(_noise(16_000, 0.01), None)
    assert aec.bad_frames == 2 and aec.frames == 3
    for f in (f1, f2, f3):
        assert np.isfinite(f.clean).all() and np.isfinite(f.mic_level_db)


@pytest.mark.parametrize("ns", [True, False])
async def test_noise_suppression_follows_the_options(ns: bool) -> None:
    from livekit_bargein import BargeIn, BargeInOptions

    x = _noise(16_000, 3.0, amp=0.01)  # stationary noise: what WebRTC NS removes
    engine = BargeIn(options=BargeInOptions(aec_noise_suppression=ns))
    out = await _drain(engine.wrap_input(ScriptedSource(_frames(x, rate_hz=16_000, frame_ms=10))))
    y = np.concatenate([np.frombuffer(f.data, np.int16) for f in out]).astype(np.float64) / 32768
    tail_db = 10 * np.log10(np.mean(y[-16_000:] ** 2))
    in_db = 10 * np.log10(np.mean(x[-16_000:].astype(np.float64) ** 2))
    if ns:
        assert tail_db < in_db - 6
    else:
        assert tail_db > in_db - 1.5  # only the high-pass filter


@pytest.mark.parametrize(
    ("bound", "margin_db", "expect"), [(True, 12.0, 12.0), (False, 12.0, None)]
)
async def test_near_end_gain_bound_follows_the_options(
    bound: bool, margin_db: float, expect: float | None
) -> None:
    from livekit_bargein import BargeIn, BargeInOptions

    engine = BargeIn(options=BargeInOptions(
        near_end_gain_bound=bound, near_end_gain_bound_margin_db=margin_db
    ))  # fmt: skip
    frames = _frames(_noise(16_000, 0.2), rate_hz=16_000, frame_ms=10)
    inp = engine.wrap_input(ScriptedSource(frames))
    await _drain(inp)
    aec = inp._aec  # type: ignore[attr-defined]
    assert aec is not None and aec.near_end_gain_bound_db == expect
    assert (aec._near_end._bound is not None) == bound


@pytest.mark.parametrize(("history_ms", "hops"), [(200.0, 10), (0.0, 0)])
async def test_near_end_estimate_history_follows_the_options(history_ms: float, hops: int) -> None:
    from livekit_bargein import BargeIn, BargeInOptions

    engine = BargeIn(options=BargeInOptions(near_end_estimate_history_ms=history_ms))
    frames = _frames(_noise(16_000, 0.2), rate_hz=16_000, frame_ms=10)
    inp = engine.wrap_input(ScriptedSource(frames))
    await _drain(inp)
    aec = inp._aec  # type: ignore[attr-defined]
    assert aec is not None and aec._near_end._estimate_min_hops == hops  # 20 ms hops


@pytest.mark.parametrize(
    ("veto", "onset_prob", "separate"),
    [(0.3, None, True), (0.0, 0.98, True), (0.0, None, False)],
)
async def test_near_end_separation_follows_the_options(
    veto: float, onset_prob: float | None, separate: bool
) -> None:
    from livekit_bargein import BargeIn, BargeInOptions

    engine = BargeIn(
        options=BargeInOptions(near_end_speech_min=veto, near_end_onset_prob=onset_prob)
    )
    frames = _frames(_noise(16_000, 0.2), rate_hz=16_000, frame_ms=10)
    inp = engine.wrap_input(ScriptedSource(frames))
    await _drain(inp)
    aec = inp._aec  # type: ignore[attr-defined]
    assert aec is not None and aec.separate_near_end is separate
