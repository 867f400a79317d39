from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import tokenize
from livekit.agents import tts as lk_tts

from livekit_bargein.eval.piper_voice import PiperSpeaker, Synthesis
from livekit_bargein.eval.trace import SIM_RATE_HZ, WordTiming
from livekit_bargein.eval.tts import PiperTTS

_MARKER_SAMPLES = SIM_RATE_HZ // 100  # the adapter's 10 ms end-of-segment marker


class _RecordingSpeaker:
    """Wraps a PiperSpeaker and keeps every Synthesis, to compare against what was emitted."""

    def __init__(self, inner: PiperSpeaker) -> None:
        self._inner = inner
        self.outputs: list[Synthesis] = []

    def synthesize(self, text: str, **kwargs: object) -> Synthesis:
        out = self._inner.synthesize(text, **kwargs)  # type: ignore[arg-type]
        self.outputs.append(out)
        return out


@pytest.fixture(scope="module")
def speaker() -> PiperSpeaker:
    return PiperSpeaker.load()


def _pcm(frames: list[rtc.AudioFrame]) -> np.ndarray:
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])


def _assert_monotonic(words: list[WordTiming], n_samples: int) -> None:
    prev_end = 0
    for w in words:
        assert prev_end <= w.start_sample <= w.end_sample <= n_samples, w
        prev_end = w.end_sample


async def test_synthesize_frames_words_and_log(speaker: PiperSpeaker) -> None:
    tts = PiperTTS(speaker=speaker)
    text = "Hello there, how are you doing today?"
    frames: list[rtc.AudioFrame] = []
    async with tts.synthesize(text) as stream:
        async for ev in stream:
            frames.append(ev.frame)

    assert all(f.sample_rate == SIM_RATE_HZ and f.num_channels == 1 for f in frames)
    assert max(f.samples_per_channel for f in frames) <= SIM_RATE_HZ // 4  # <= 250 ms
    assert len(tts.synth_log) == 1
    rec = tts.synth_log[0]
    assert rec.text == text
    assert rec.n_samples == sum(f.samples_per_channel for f in frames)
    assert [w.word for w in rec.words] == text.split()
    _assert_monotonic(rec.words, rec.n_samples)
    assert rec.words[-1].end_sample > rec.n_samples // 2  # timings span the audio


async def test_empty_text_is_silent_and_unlogged(speaker: PiperSpeaker) -> None:
    tts = PiperTTS(speaker=speaker)
    async with tts.synthesize("  ") as stream:
        frames = [ev.frame async for ev in stream]
    assert frames == []
    assert tts.synth_log == []


async def test_stream_adapter_reply_timeline(speaker: PiperSpeaker) -> None:
    rec_speaker = _RecordingSpeaker(speaker)
    tts = PiperTTS(speaker=rec_speaker)  # type: ignore[arg-type]
    # The same adapter the session builds for a non-streaming TTS (voice/agent.py tts_node).
    adapter = lk_tts.StreamAdapter(
        tts=tts, sentence_tokenizer=tokenize.blingfire.SentenceTokenizer(retain_format=True)
    )
    text = "Sure, I can help you with that today. Let me check the schedule for next week."
    frames: list[rtc.AudioFrame] = []
    async with adapter.stream() as stream:
        for i in range(0, len(text), 4):  # LLM-like pieces
            stream.push_text(text[i : i + 4])
            await asyncio.sleep(0.005)
        stream.end_input()
        async for ev in stream:
            frames.append(ev.frame)
    await adapter.aclose()

    assert [r.text for r in tts.synth_log] == [
        "Sure, I can help you with that today.",
        "Let me check the schedule for next week.",
    ]
    assert max(f.samples_per_channel for f in frames) <= SIM_RATE_HZ // 4
    total = tts.reply_n_samples()
    emitted = _pcm(frames)
    # Sentences back to back: no silence inserted, nothing trimmed; then one 10 ms silent marker.
    expected = np.concatenate(
        [(np.clip(s.audio, -1, 1) * 32767.0).astype(np.int16) for s in rec_speaker.outputs]
    )
    assert len(emitted) == total + _MARKER_SAMPLES
    np.testing.assert_array_equal(emitted[:total], expected)
    assert not emitted[total:].any()

    words = tts.reply_word_timings()
    assert [w.word for w in words] == text.split()
    _assert_monotonic(words, total)
    first_len = tts.synth_log[0].n_samples
    assert words[len(tts.synth_log[0].words)].start_sample >= first_len
    assert tts.reply_word_timings(0, 1) == tts.synth_log[0].words
    # A later reply's timeline starts from its own first record.
    assert tts.reply_word_timings(start_index=1)[0].start_sample == (
        tts.synth_log[1].words[0].start_sample
    )


async def test_streaming_mode_announces_every_word_with_its_time(speaker: PiperSpeaker) -> None:
    from livekit.agents.tts.tts import USERDATA_TIMED_TRANSCRIPT
    from livekit.agents.voice.io import TimedString

    tts = PiperTTS(speaker=speaker, streaming=True)
    assert tts.capabilities.streaming and tts.capabilities.aligned_transcript
    text = "Sure, I can help you with that today. Let me check the schedule for next week."
    frames: list[rtc.AudioFrame] = []
    timed: list[tuple[TimedString, int]] = []  # (word, sample index of the frame carrying it)
    n = 0
    async with tts.stream() as stream:
        for i in range(0, len(text), 4):
            stream.push_text(text[i : i + 4])
            await asyncio.sleep(0.005)
        stream.end_input()
        async for ev in stream:
            frames.append(ev.frame)
            timed.extend((t, n) for t in ev.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, []))
            n += ev.frame.samples_per_channel

    assert [r.text for r in tts.synth_log] == [
        "Sure, I can help you with that today.",
        "Let me check the schedule for next week.",
    ]
    assert "".join(t for t, _ in timed).split() == text.split()
    words = tts.reply_word_timings()
    for (t, at_sample), w in zip(timed, words, strict=True):
        # the stream's clock is the reply's clock, and a word is announced before it plays
        assert t.start_time == pytest.approx(w.start_sample / SIM_RATE_HZ)
        assert t.end_time == pytest.approx(w.end_sample / SIM_RATE_HZ)
        assert at_sample <= w.start_sample
    # sentences back to back, as through the adapter
    assert len(_pcm(frames)) == tts.reply_n_samples() + _MARKER_SAMPLES


async def test_non_streaming_mode_has_no_stream(speaker: PiperSpeaker) -> None:
    with pytest.raises(RuntimeError, match="StreamAdapter"):
        PiperTTS(speaker=speaker).stream()


async def test_deterministic_voice_repeats_exactly_and_the_default_does_not(
    speaker: PiperSpeaker,
) -> None:
    # the evaluator's --fixed-voice: every configuration and every run hears the same agent
    text = "Your order ships on Monday."

    async def pcm(tts: PiperTTS) -> np.ndarray:
        async with tts.synthesize(text) as stream:
            return _pcm([ev.frame async for ev in stream])

    fixed = PiperTTS(speaker=speaker, deterministic=True)
    a, b = await pcm(fixed), await pcm(fixed)
    assert np.array_equal(a, b)
    noisy = PiperTTS(speaker=speaker)
    c, d = await pcm(noisy), await pcm(noisy)
    assert not np.array_equal(c, d)  # Piper's sampling noise: why --fixed-voice exists
