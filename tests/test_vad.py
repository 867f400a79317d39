"""BargeInVAD with a real engine (no session) and real Silero on Piper speech, 10 ms frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.vad import VADEvent, VADEventType

from livekit_bargein import BargeIn
from livekit_bargein.eval.piper_voice import PiperSpeaker
from livekit_bargein.resample import PolyphaseResampler
from livekit_bargein.vad import ANALYSIS_RATE_HZ, WINDOW_SAMPLES

RATE_HZ = 16_000
_PAD_S = 1.0
_NOISE_DBFS = -60.0
_ONSET_LATENCY_MS = 300.0
_OFFSET_SLACK_MS = 150.0


@dataclass(frozen=True)
class _Clip:
    audio: np.ndarray
    """16 kHz float32: 1 s of low noise, the phrase, 1 s of low noise."""
    voiced_start_ms: float
    voiced_end_ms: float


@pytest.fixture(scope="module")
def clip() -> _Clip:
    speech = PiperSpeaker.load().synthesize(
        "Hello there, can you hear me?", out_rate_hz=RATE_HZ, deterministic=True
    )
    voice = 0.5 * speech.audio / np.abs(speech.audio).max()
    pad = np.zeros(int(_PAD_S * RATE_HZ), np.float32)
    rng = np.random.default_rng(3)
    x = np.concatenate([pad, voice, pad])
    x += (10 ** (_NOISE_DBFS / 20) * rng.standard_normal(len(x))).astype(np.float32)
    voiced = np.nonzero(np.abs(voice) > 0.01)[0]  # -34 dB below the peak
    pad_ms = _PAD_S * 1000.0
    return _Clip(
        audio=x.astype(np.float32),
        voiced_start_ms=pad_ms + voiced[0] * 1000.0 / RATE_HZ,
        voiced_end_ms=pad_ms + voiced[-1] * 1000.0 / RATE_HZ,
    )


def _frames_10ms(x: np.ndarray, rate_hz: int) -> list[rtc.AudioFrame]:
    if rate_hz != RATE_HZ:
        x = PolyphaseResampler(in_rate_hz=RATE_HZ, out_rate_hz=rate_hz).process(x)
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    n = rate_hz // 100
    return [
        rtc.AudioFrame(pcm[i : i + n].tobytes(), rate_hz, 1, n)
        for i in range(0, len(pcm) - n + 1, n)
    ]


async def _run(
    engine: BargeIn, x: np.ndarray, *, rate_hz: int = RATE_HZ, flush_at_s: float | None = None
) -> list[VADEvent]:
    stream = engine.vad.stream()
    frames = _frames_10ms(x, rate_hz)
    flush_at = None if flush_at_s is None else int(flush_at_s * 100)
    for i, f in enumerate(frames):
        if i == flush_at:
            stream.flush()
        stream.push_frame(f)
    stream.end_input()
    events = [ev async for ev in stream]
    await stream.aclose()
    return events


def _ms(ev: VADEvent) -> float:
    return ev.samples_index * 1000.0 / ANALYSIS_RATE_HZ


def _of(events: list[VADEvent], kind: VADEventType) -> list[VADEvent]:
    return [ev for ev in events if ev.type is kind]


def _check_speech_events(events: list[VADEvent], clip: _Clip, offset_ms: float) -> None:
    starts = _of(events, VADEventType.START_OF_SPEECH)
    ends = _of(events, VADEventType.END_OF_SPEECH)
    assert starts and len(starts) == len(ends)  # the comma pause may split the phrase in two
    marks = sorted([(_ms(e), 0) for e in starts] + [(_ms(e), 1) for e in ends])
    assert [kind for _, kind in marks] == [0, 1] * len(starts)  # strictly alternating
    first_ms, last_ms = _ms(starts[0]), _ms(ends[-1])
    assert clip.voiced_start_ms < first_ms <= clip.voiced_start_ms + _ONSET_LATENCY_MS
    assert clip.voiced_end_ms < last_ms <= clip.voiced_end_ms + offset_ms + _OFFSET_SLACK_MS


async def test_speech_events_16k(clip: _Clip) -> None:
    engine = BargeIn()
    events = await _run(engine, clip.audio)
    _check_speech_events(events, clip, engine.options.offset_ms)

    start = _of(events, VADEventType.START_OF_SPEECH)[0]
    assert start.speaking and start.speech_duration > 0
    # the START frames reach back past the onset: prefix padding before the first voiced sample
    frames_s = sum(f.duration for f in start.frames)
    assert frames_s >= 0.45
    assert _ms(start) - frames_s * 1000.0 < clip.voiced_start_ms - 300.0
    end = _of(events, VADEventType.END_OF_SPEECH)[-1]
    assert not end.speaking
    assert end.silence_duration == pytest.approx(engine.options.offset_ms / 1000.0, abs=0.033)


async def test_inference_done_every_window(clip: _Clip) -> None:
    events = await _run(BargeIn(), clip.audio)
    inference = _of(events, VADEventType.INFERENCE_DONE)
    pushed = len(clip.audio) // 160 * 160  # whole 10 ms frames only
    assert len(inference) == pushed // WINDOW_SAMPLES
    assert set(np.diff([ev.samples_index for ev in inference])) == {WINDOW_SAMPLES}  # 32 ms
    probs = np.array([ev.probability for ev in inference])
    assert ((probs >= 0.0) & (probs <= 1.0)).all()
    t_ms = np.array([_ms(ev) for ev in inference])
    assert probs[t_ms < clip.voiced_start_ms - 100].max() < 0.2  # leading noise
    assert probs[(t_ms > clip.voiced_start_ms) & (t_ms < clip.voiced_end_ms)].max() > 0.9
    assert all(ev.inference_duration >= 0.0 and len(ev.frames) == 1 for ev in inference)


async def test_speech_events_48k(clip: _Clip) -> None:
    engine = BargeIn()
    events_48k = await _run(engine, clip.audio, rate_hz=48_000)
    _check_speech_events(events_48k, clip, engine.options.offset_ms)
    start = _of(events_48k, VADEventType.START_OF_SPEECH)[0]
    assert all(f.sample_rate == 48_000 for f in start.frames)  # padding at the input rate
    # same decisions as at 16 kHz, within one analysis window
    events_16k = await _run(BargeIn(), clip.audio)
    for kind in (VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH):
        a = [_ms(e) for e in _of(events_48k, kind)]
        b = [_ms(e) for e in _of(events_16k, kind)]
        assert len(a) == len(b)
        assert np.allclose(a, b, atol=WINDOW_SAMPLES * 1000.0 / ANALYSIS_RATE_HZ)


async def test_flush_keeps_stream_working(clip: _Clip) -> None:
    engine = BargeIn()
    events = await _run(engine, clip.audio, flush_at_s=0.5)  # during the leading noise
    _check_speech_events(events, clip, engine.options.offset_ms)
    pushed = len(clip.audio) // 160 * 160
    # the flush drops at most one partial window
    assert len(_of(events, VADEventType.INFERENCE_DONE)) >= pushed // WINDOW_SAMPLES - 1


async def test_min_silence_duration_follows_options() -> None:
    engine = BargeIn()
    assert engine.vad.min_silence_duration == pytest.approx(engine.options.offset_ms / 1000.0)
    engine.update_options(offset_ms=500.0)
    assert engine.vad.min_silence_duration == pytest.approx(0.5)
    assert engine.vad.capabilities.update_interval == pytest.approx(0.032)


async def test_silero_skipped_under_the_level_gate(clip: _Clip) -> None:
    """Windows under the tracked noise floor never reach the model (probability exactly 0)
    once the floor is known, and the model, continuing from its state after the skip, still
    finds the phrase on time."""
    x = clip.audio.copy()
    lead = int(_PAD_S * RATE_HZ)
    x[:lead] *= 10 ** (-30 / 20)  # the leading noise at -90 dBFS: the floor settles there
    events = await _run(BargeIn(), x)
    inference = _of(events, VADEventType.INFERENCE_DONE)
    t_ms = np.array([_ms(ev) for ev in inference])
    probs = np.array([ev.probability for ev in inference])
    lead_noise = (t_ms > 300.0) & (t_ms < _PAD_S * 1000.0 - 50)
    assert lead_noise.sum() > 10 and (probs[lead_noise] == 0.0).all()
    assert probs[(t_ms > clip.voiced_start_ms) & (t_ms < clip.voiced_end_ms)].max() > 0.9
    _check_speech_events(events, clip, BargeIn().options.offset_ms)


@pytest.mark.parametrize("rate_hz", [16_000, 48_000])
def test_near_end_scorer_scores_speech_and_skips_when_told(clip: _Clip, rate_hz: int) -> None:
    from scipy import signal

    from livekit_bargein.vad import NearEndScorer

    x = clip.audio
    if rate_hz != RATE_HZ:
        x = signal.resample_poly(x, rate_hz // RATE_HZ, 1).astype(np.float32)
    f = rate_hz // 100
    scorer = NearEndScorer()
    probs: list[float | None] = []
    for i in range(0, len(x) - f + 1, 2 * f):  # 20 ms pieces, as the estimate arrives
        scorer.push(x[i : i + 2 * f], rate_hz=rate_hz, score=True)
        probs.append(scorer.prob)
    t_ms = np.arange(1, len(probs) + 1) * 20.0
    p = np.array([np.nan if v is None else v for v in probs])
    voiced = (t_ms > clip.voiced_start_ms + 100) & (t_ms < clip.voiced_end_ms)
    assert np.nanmean(p[voiced] > 0.5) > 0.7
    assert np.nanmax(p[t_ms < clip.voiced_start_ms - 100]) < 0.2
    # told not to score (no echo to veto): no verdict rather than a stale one
    scorer.push(x[: 4 * f], rate_hz=rate_hz, score=False)
    assert scorer.prob is None
