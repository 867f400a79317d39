"""An oracle streaming STT for the replay evaluator: scripted transcripts, real-STT timing.

The transcripts come from the scenario (what the user said and when), not from recognition, but
they arrive like a streaming service's would: START_OF_SPEECH at the voiced onset, growing interim
transcripts from ``interim_delay_ms`` after it, the final ``final_delay_ms`` after the speech ends.

Everything is clocked by the audio the streams receive (16 kHz samples, sample 0 = the first
sample the session ever pushed), never by wall time: if the session stops feeding audio, the
transcripts stop too, exactly like a real service that has not heard the audio yet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from livekit.agents import stt
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)
from livekit.agents.utils import AudioBuffer, is_given

from .trace import SIM_RATE_HZ

__all__ = ["FINAL_ONLY_DELAY_MS", "OracleSTT", "OracleSTTStream", "Utterance"]

FINAL_ONLY_DELAY_MS = 600.0
"""Speech end to a non-streaming STT's transcript (``interim_results=False``): the VAD's segment
ends ~300 ms after the speech, then the request."""

_INTERIM_CONFIDENCE = 0.8
_FINAL_CONFIDENCE = 1.0


@dataclass(frozen=True)
class Utterance:
    """One scripted user utterance, in the 16 kHz simulation sample clock."""

    voiced_start_sample: int
    """First voiced sample (speech onset, not the start of the audio clip)."""
    end_sample: int
    """End of the speech (exclusive); may equal ``voiced_start_sample``."""
    text: str

    def __post_init__(self) -> None:
        if self.voiced_start_sample < 0 or self.end_sample < self.voiced_start_sample:
            raise ValueError(f"bad utterance bounds: {self}")


class _Kind(Enum):
    START = 0
    INTERIM = 1
    FINAL = 2
    END = 3


@dataclass(frozen=True)
class _Due:
    at_sample: int
    kind: _Kind
    utt_index: int
    n_words: int = 0


class OracleSTT(stt.STT):
    """Streaming STT whose transcripts come from a script, timed like a real streaming STT.

    Call ``set_script()`` with the scenario's utterances before feeding audio. Emission state is
    shared by the instance, so a stream the session recreates picks up where the previous one
    left off (its clock starts at the most audio any stream had received).

    Args:
        interim_delay_ms: From the voiced onset to the first interim transcript.
        interim_interval_ms: Between interim transcripts.
        final_delay_ms: From the end of speech to the final transcript (and END_OF_SPEECH).
        interim_results: False: no interim transcripts, only the final after the speech ends,
            which is when a non-streaming STT's words arrive (``openai.STT()``'s default model
            behind LiveKit's ``StreamAdapter``, which sends the VAD's segment when it ends).
        language: Language reported in the transcripts.
    """

    def __init__(
        self,
        *,
        interim_delay_ms: float = 350.0,
        interim_interval_ms: float = 250.0,
        final_delay_ms: float = 250.0,
        interim_results: bool = True,
        language: str = "en",
    ) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(streaming=True, interim_results=interim_results)
        )
        if interim_delay_ms < 0 or final_delay_ms < 0 or interim_interval_ms <= 0:
            raise ValueError("delays must be >= 0 and interim_interval_ms > 0")
        self._interim_delay = _ms_to_samples(interim_delay_ms)
        self._interim_interval = max(1, _ms_to_samples(interim_interval_ms))
        self._final_delay = _ms_to_samples(final_delay_ms)
        self._language = language
        self._utterances: list[Utterance] = []
        self._schedule: list[_Due] = []
        self._cursor = 0
        self._finalized: set[int] = set()  # utterances finalized early by a flush
        self._clock_samples = 0
        self._usage_reported_samples = 0
        self.event_log: list[tuple[int, stt.SpeechEventType, str]] = []
        """(sim-clock sample at emission, event type, text) for every event emitted."""

    @property
    def model(self) -> str:
        return "oracle"

    @property
    def provider(self) -> str:
        return "livekit-bargein"

    @property
    def clock_samples(self) -> int:
        """Most audio any stream has received, in 16 kHz samples."""
        return self._clock_samples

    def set_script(self, utterances: Sequence[Utterance]) -> None:
        """Replace the script. Instants already passed fire with the next frame received.

        Args:
            utterances: The user's utterances; their voiced spans must not overlap.

        Raises:
            ValueError: If two utterances overlap.
        """
        utts = sorted(utterances, key=lambda u: u.voiced_start_sample)
        for a, b in zip(utts, utts[1:], strict=False):
            if b.voiced_start_sample < a.end_sample:
                raise ValueError(f"overlapping utterances: {a} / {b}")
        schedule: list[_Due] = []
        for i, u in enumerate(utts):
            n_words = len(u.text.split())
            final_at = u.end_sample + self._final_delay
            speech_len = max(1, u.end_sample - u.voiced_start_sample)
            schedule.append(_Due(u.voiced_start_sample, _Kind.START, i))
            at = u.voiced_start_sample + self._interim_delay
            while at < final_at and n_words and self.capabilities.interim_results:
                # Words heard so far, proportional to the elapsed part of the speech.
                frac = min(1.0, (at - u.voiced_start_sample) / speech_len)
                schedule.append(_Due(at, _Kind.INTERIM, i, max(1, math.floor(frac * n_words))))
                at += self._interim_interval
            schedule.append(_Due(final_at, _Kind.FINAL, i))
            schedule.append(_Due(final_at, _Kind.END, i))
        # Stable sort: same-instant events keep their START/INTERIM/FINAL/END order.
        schedule.sort(key=lambda d: d.at_sample)
        self._utterances = utts
        self._schedule = schedule
        self._cursor = 0
        self._finalized = set()

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> OracleSTTStream:
        return OracleSTTStream(
            stt=self,
            conn_options=conn_options,
            language=language if is_given(language) else self._language,
        )

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        # A buffer carries no position: take it as the latest audio received by the streams
        # (or the start of the session when nothing was streamed).
        frames = buffer if isinstance(buffer, list) else [buffer]
        n = sum(_frame_samples(f.samples_per_channel, f.sample_rate) for f in frames)
        end = max(self._clock_samples, n)
        start = end - n
        texts = [
            u.text for u in self._utterances if u.voiced_start_sample < end and u.end_sample > start
        ]
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id="oracle",
            alternatives=[
                stt.SpeechData(
                    language=language if is_given(language) else self._language,
                    text=" ".join(texts),
                    start_time=start / SIM_RATE_HZ,
                    end_time=end / SIM_RATE_HZ,
                    confidence=_FINAL_CONFIDENCE if texts else 0.0,
                )
            ],
        )

    def _advance(self, pos: int, language: str) -> list[stt.SpeechEvent]:
        """Events due once the audio reaches ``pos`` samples."""
        self._clock_samples = max(self._clock_samples, pos)
        out: list[stt.SpeechEvent] = []
        while self._cursor < len(self._schedule) and self._schedule[self._cursor].at_sample <= pos:
            due = self._schedule[self._cursor]
            self._cursor += 1
            if due.utt_index in self._finalized:
                continue
            out.extend(self._make_events(due, pos, language))
        return out

    def _flush(self, pos: int, language: str) -> list[stt.SpeechEvent]:
        """A flush finalizes speech that has ended but whose final is still pending."""
        out: list[stt.SpeechEvent] = []
        for i, u in enumerate(self._utterances):
            if i in self._finalized or u.end_sample > pos:
                continue
            pending = [
                d
                for d in self._schedule[self._cursor :]
                if d.utt_index == i and d.kind in (_Kind.FINAL, _Kind.END)
            ]
            if len(pending) == 2:  # neither FINAL nor END emitted yet
                self._finalized.add(i)
                for d in pending:
                    out.extend(self._make_events(d, pos, language))
        return out

    def _make_events(self, due: _Due, pos: int, language: str) -> list[stt.SpeechEvent]:
        u = self._utterances[due.utt_index]
        request_id = f"oracle-{due.utt_index}"
        if due.kind is _Kind.START:
            evs = [stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH, request_id=request_id)]
        elif due.kind is _Kind.END:
            evs = [stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH, request_id=request_id)]
            # Usage like a metered service: the audio received since the last report.
            evs.append(
                stt.SpeechEvent(
                    type=stt.SpeechEventType.RECOGNITION_USAGE,
                    request_id=request_id,
                    recognition_usage=stt.RecognitionUsage(
                        audio_duration=(pos - self._usage_reported_samples) / SIM_RATE_HZ
                    ),
                )
            )
            self._usage_reported_samples = pos
        else:
            final = due.kind is _Kind.FINAL
            text = u.text.strip() if final else " ".join(u.text.split()[: due.n_words])
            end = u.end_sample if final else min(u.end_sample, due.at_sample)
            evs = [
                stt.SpeechEvent(
                    type=(
                        stt.SpeechEventType.FINAL_TRANSCRIPT
                        if final
                        else stt.SpeechEventType.INTERIM_TRANSCRIPT
                    ),
                    request_id=request_id,
                    alternatives=[
                        stt.SpeechData(
                            language=language,
                            text=text,
                            start_time=u.voiced_start_sample / SIM_RATE_HZ,
                            end_time=end / SIM_RATE_HZ,
                            confidence=_FINAL_CONFIDENCE if final else _INTERIM_CONFIDENCE,
                        )
                    ],
                )
            ]
        for ev in evs:
            text = ev.alternatives[0].text if ev.alternatives else ""
            self.event_log.append((pos, ev.type, text))
        return evs


class OracleSTTStream(stt.RecognizeStream):
    """A stream of ``OracleSTT``; counts the audio it receives and emits what is due."""

    def __init__(self, *, stt: OracleSTT, conn_options: APIConnectOptions, language: str) -> None:
        super().__init__(stt=stt, conn_options=conn_options)
        self._oracle = stt
        self._language = language
        # A recreated stream continues the session's clock rather than restarting at 0.
        self._base_samples = stt.clock_samples
        self._received_src_samples = 0
        self._src_rate_hz = 0

    @property
    def position_samples(self) -> int:
        """This stream's position in the 16 kHz simulation clock."""
        if not self._src_rate_hz:
            return self._base_samples
        return self._base_samples + _frame_samples(self._received_src_samples, self._src_rate_hz)

    async def _run(self) -> None:
        async for item in self._input_ch:
            if isinstance(item, self._FlushSentinel):
                events = self._oracle._flush(self.position_samples, self._language)
            else:
                # push_frame() already rejects a sample-rate change within a stream.
                self._src_rate_hz = item.sample_rate
                self._received_src_samples += item.samples_per_channel
                events = self._oracle._advance(self.position_samples, self._language)
            for ev in events:
                self._event_ch.send_nowait(ev)


def _ms_to_samples(ms: float) -> int:
    return int(round(ms * SIM_RATE_HZ / 1000.0))


def _frame_samples(n_src: int, rate_hz: int) -> int:
    # Exact integer conversion of a cumulative count, so 10 ms frames at any rate add up exactly.
    return n_src * SIM_RATE_HZ // rate_hz
