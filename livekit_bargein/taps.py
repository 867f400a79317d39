"""Thin pass-through taps on the session's audio: the playback tap and the echo-cancelled input.

``PlaybackTap`` sits at the top of the output chain. It forwards every frame unchanged and keeps a
copy, which it plays out on the *microphone's* clock: each 10 ms of microphone consumes 10 ms of
reference while the sink is playing (not paused, segment started). Driving the reference from the
capture clock keeps it in step with the microphone whatever the event loop does; the remaining bulk
delay (transport, jitter buffer, room) is estimated and aligned by ``aec.EchoCanceller``.

``EchoCancelledInput`` wraps the session's microphone: it mixes to mono, cuts 10 ms chunks, runs the
WebRTC APM with the tap's reference and hands the cleaned audio on (mono, at the input rate).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT
from livekit.agents.utils import is_given
from livekit.agents.voice import io

from .aec import AecFrame, EchoCanceller, FrameSplitter, to_mono_float
from .context import TimedText
from .log import logger
from .near_end import ESTIMATE_MIN_HISTORY_MS, GAIN_BOUND_MARGIN_DB
from .options import SUPPORTED_RATES_HZ, check_processing_rate_hz, processing_rate_hz
from .resample import PolyphaseResampler


@dataclass(frozen=True)
class PlaybackRecord:
    """One finished playback segment (one reply's audio), as the tap saw it."""

    position_s: float
    """Playback position the sink reported (what reached the speaker)."""
    interrupted: bool
    audio_s: float
    """Audio the tap received for the segment."""
    spoken: list[TimedText] = field(default_factory=list)
    """The TTS's text with its timing on the segment's clock (from the frames' userdata)."""
    synchronized_transcript: str | None = None


class PlaybackTap(io.AudioOutput):
    """Output-chain wrapper that knows what reached the speaker, for AEC and context."""

    def __init__(self, next_in_chain: io.AudioOutput) -> None:
        super().__init__(
            label="BargeInPlaybackTap",
            capabilities=io.AudioOutputCapabilities(pause=True),
            next_in_chain=next_in_chain,
            sample_rate=next_in_chain.sample_rate,
        )
        self._fifo: deque[np.ndarray] = deque()
        self._fifo_samples = 0
        self._rate_hz: int | None = None
        self._started = False
        self._paused_by_session = False
        self._held = False  # paused by the barge-in engine (soft yield)
        self._segment_played = 0
        self._resamplers: dict[int, PolyphaseResampler] = {}  # by microphone rate
        self.on_segment_start: Callable[[], None] | None = None
        # the TTS's timed text of the segment being captured (for the heard/unsaid split)
        self._capture_open = False
        self._capture_samples = 0
        self._capture_rate_hz = 0
        self._spoken: list[TimedText] = []
        self.last_playback: PlaybackRecord | None = None
        self.on_playback_record: Callable[[PlaybackRecord], None] | None = None

    # -- state --------------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        """The sink is playing audio now (started, not paused, something buffered)."""
        return self._started and not self._paused and self._fifo_samples > 0

    @property
    def _paused(self) -> bool:
        return self._paused_by_session or self._held

    @property
    def held(self) -> bool:
        return self._held

    @property
    def segment_played_s(self) -> float:
        """Reference seconds of the current segment consumed so far (the tap's playhead)."""
        return self._segment_played / self._rate_hz if self._rate_hz else 0.0

    def recent_spoken_text(self, window_s: float = 8.0) -> str:
        """Text of the current segment that started playing in the last ``window_s`` (or is
        about to): what an echo of the agent could contain right now."""
        played = self.segment_played_s
        return "".join(
            t.text
            for t in self._spoken
            if t.start_s is not None and played - window_s <= t.start_s <= played + 0.5
        )

    # -- soft yield ---------------------------------------------------------------------------

    def hold(self) -> None:
        """Pause playout now (soft yield); the playhead stays on the exact sample."""
        if self._held:
            return
        self._held = True
        if not self._paused_by_session and self.next_in_chain is not None:
            self.next_in_chain.pause()

    def release(self) -> None:
        """Resume playout from the sample where :meth:`hold` paused it."""
        if not self._held:
            return
        self._held = False
        if not self._paused_by_session and self.next_in_chain is not None:
            self.next_in_chain.resume()

    # -- io.AudioOutput -----------------------------------------------------------------------

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self._note_timed_text(frame)
        data = np.frombuffer(frame.data, dtype=np.int16)
        mono = to_mono_float(data, num_channels=frame.num_channels)
        if self._rate_hz is not None and frame.sample_rate != self._rate_hz:
            self._fifo.clear()
            self._fifo_samples = 0
            self._resamplers.clear()  # they convert from the old rate
        self._rate_hz = frame.sample_rate
        self._fifo.append(mono)
        self._fifo_samples += len(mono)
        if self.next_in_chain is not None:
            await self.next_in_chain.capture_frame(frame)

    def flush(self) -> None:
        super().flush()
        self._capture_open = False
        if self.next_in_chain is not None:
            self.next_in_chain.flush()

    def clear_buffer(self) -> None:
        self._capture_open = False
        self._fifo.clear()
        self._fifo_samples = 0
        self._reset_resamplers()
        if self.next_in_chain is not None:
            self.next_in_chain.clear_buffer()
        # a stopped reply leaves no hold behind: the next reply must be audible
        if self._held:
            self._held = False
            if not self._paused_by_session and self.next_in_chain is not None:
                self.next_in_chain.resume()

    def pause(self) -> None:
        self._paused_by_session = True
        super().pause()

    def resume(self) -> None:
        self._paused_by_session = False
        if not self._held:
            super().resume()

    def on_playback_started(self, *, created_at: float) -> None:
        self._started = True
        self._segment_played = 0
        self._reset_resamplers()
        if self.on_segment_start is not None:
            self.on_segment_start()
        super().on_playback_started(created_at=created_at)

    def on_playback_finished(
        self,
        *,
        playback_position: float,
        interrupted: bool,
        synchronized_transcript: str | None = None,
    ) -> None:
        self._started = False
        self._fifo.clear()
        self._fifo_samples = 0
        rate = self._capture_rate_hz
        self.last_playback = PlaybackRecord(
            position_s=playback_position,
            interrupted=interrupted,
            audio_s=self._capture_samples / rate if rate else 0.0,
            spoken=list(self._spoken),
            synchronized_transcript=synchronized_transcript,
        )
        if self.on_playback_record is not None:
            self.on_playback_record(self.last_playback)
        super().on_playback_finished(
            playback_position=playback_position,
            interrupted=interrupted,
            synchronized_transcript=synchronized_transcript,
        )

    def _note_timed_text(self, frame: rtc.AudioFrame) -> None:
        if not self._capture_open:  # first frame of a new segment
            self._capture_open = True
            self._capture_samples = 0
            self._spoken = []
        rate = frame.sample_rate
        if self._capture_rate_hz and rate != self._capture_rate_hz:
            self._capture_samples = round(self._capture_samples * rate / self._capture_rate_hz)
        self._capture_rate_hz = rate
        for t in frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, ()):
            # a TTS without timestamps still announces its text with the frame that starts it
            start = t.start_time if is_given(t.start_time) else self._capture_samples / rate
            end = t.end_time if is_given(t.end_time) else None
            self._spoken.append(TimedText(str(t), float(start), end))
        self._capture_samples += frame.samples_per_channel

    # -- reference for the canceller ------------------------------------------------------------

    def read_reference(self, n_samples: int, sample_rate_hz: int) -> np.ndarray | None:
        """The next ``n_samples`` the speaker plays, at ``sample_rate_hz``; None when silent."""
        if not self._started or self._paused or self._fifo_samples == 0 or not self._rate_hz:
            return None
        need = int(round(n_samples * self._rate_hz / sample_rate_hz))
        out = np.zeros(need, np.float32)
        filled = 0
        while filled < need and self._fifo:
            chunk = self._fifo[0]
            take = min(len(chunk), need - filled)
            out[filled : filled + take] = chunk[:take]
            if take == len(chunk):
                self._fifo.popleft()
            else:
                self._fifo[0] = chunk[take:]
            filled += take
        self._fifo_samples -= filled
        self._segment_played += filled
        if self._rate_hz == sample_rate_hz:
            return out
        return self._resample(out, sample_rate_hz, n_samples)

    def _resample(self, x: np.ndarray, rate_hz: int, n_out: int) -> np.ndarray:
        # A streaming resampler with an exact output count: a bursty one (soxr) would turn
        # most 10 ms reads into silence and chop the rest.
        assert self._rate_hz is not None
        rs = self._resamplers.get(rate_hz)
        if rs is None:
            rs = PolyphaseResampler(in_rate_hz=self._rate_hz, out_rate_hz=rate_hz)
            self._resamplers[rate_hz] = rs
        y = rs.process(x)
        if len(y) >= n_out:
            return y[:n_out]
        return np.pad(y, (0, n_out - len(y)))

    def _reset_resamplers(self) -> None:
        # a new segment or a cleared buffer is a discontinuity: no filter tail across it
        for rs in self._resamplers.values():
            rs.reset()


class EchoCancelledInput(io.AudioInput):
    """Microphone wrapper: mono, 10 ms chunks, WebRTC APM with the tap's played reference.

    Accepts 8/16/24/48 kHz, mono or stereo (mixed to mono), frames of any length. A microphone
    faster than ``processing_rate_hz`` is resampled down to it before the APM; output frames are
    mono at the processing rate (the input rate when it is slower, or with ``None``). Without a
    tap (or while nothing plays) the APM still runs noise suppression and the high-pass filter;
    echo cancellation idles.
    """

    def __init__(
        self,
        source: io.AudioInput,
        *,
        tap: PlaybackTap | None,
        on_frame: Callable[[AecFrame, float], None] | None = None,
        noise_suppression: bool = True,
        max_delay_ms: float = 1000.0,
        wait_for_echo: bool = True,
        near_end_gain_bound_db: float | None = GAIN_BOUND_MARGIN_DB,
        separate_near_end: bool = False,
        near_end_estimate_history_ms: float = ESTIMATE_MIN_HISTORY_MS,
        processing_rate_hz: int | None = 16_000,
        mic_gain_db: float = 0.0,
    ) -> None:
        super().__init__(label="BargeInEchoCancelled", source=source)
        check_processing_rate_hz(processing_rate_hz, name="EchoCancelledInput processing_rate_hz")
        self._separate_near_end = separate_near_end
        self._processing_rate_hz = processing_rate_hz
        self._tap = tap
        self._on_frame = on_frame
        self._noise_suppression = noise_suppression
        self._max_delay_ms = max_delay_ms
        self._wait_for_echo = wait_for_echo
        self._near_end_gain_bound_db = near_end_gain_bound_db
        self._near_end_estimate_history_ms = near_end_estimate_history_ms
        self._mic_gain_db = mic_gain_db
        self._rate_hz: int | None = None  # the microphone's
        self._proc_rate_hz: int | None = None  # the canceller's and the output's
        self._down: PolyphaseResampler | None = None
        self._aec: EchoCanceller | None = None
        self._splitter: FrameSplitter | None = None
        self.frames_processed = 0
        self.recent: deque[AecFrame] = deque(maxlen=8)
        """The latest processed 10 ms frames (features for the VAD's analysis window)."""

    def _setup(self, rate_hz: int) -> None:
        if rate_hz not in SUPPORTED_RATES_HZ:
            raise ValueError(
                f"EchoCancelledInput: unsupported sample rate {rate_hz} Hz "
                f"(supported: {', '.join(map(str, SUPPORTED_RATES_HZ))})"
            )
        if self._rate_hz is not None:
            logger.warning(
                "input sample rate changed", extra={"from": self._rate_hz, "to": rate_hz}
            )
        self._rate_hz = rate_hz
        proc = processing_rate_hz(rate_hz, self._processing_rate_hz)
        self._proc_rate_hz = proc
        self._down = (
            None if proc == rate_hz else PolyphaseResampler(in_rate_hz=rate_hz, out_rate_hz=proc)
        )
        self._aec = EchoCanceller(
            sample_rate_hz=proc,
            noise_suppression=self._noise_suppression,
            max_delay_ms=self._max_delay_ms,
            wait_for_echo=self._wait_for_echo,
            near_end_gain_bound_db=self._near_end_gain_bound_db,
            separate_near_end=self._separate_near_end,
            near_end_estimate_history_ms=self._near_end_estimate_history_ms,
            mic_gain_db=self._mic_gain_db,
        )
        self._splitter = FrameSplitter(sample_rate_hz=proc)

    def set_wait_for_echo(self, wait: bool) -> None:
        """See ``EchoCanceller(wait_for_echo=...)``; applies at once."""
        self._wait_for_echo = wait
        if self._aec is not None:
            self._aec.wait_for_echo = wait

    async def __anext__(self) -> rtc.AudioFrame:
        while True:
            frame = await super().__anext__()
            if frame.sample_rate != self._rate_hz:
                self._setup(frame.sample_rate)
            assert self._aec is not None and self._splitter is not None
            data = np.frombuffer(frame.data, dtype=np.int16)
            mono = to_mono_float(data, num_channels=frame.num_channels)
            if self._down is not None:
                mono = self._down.process(mono)
            rate = self._proc_rate_hz
            assert rate is not None
            out: list[np.ndarray] = []
            for chunk in self._splitter.push(mono):
                ref = self._tap.read_reference(len(chunk), rate) if self._tap else None
                af = self._aec.process(chunk, ref)
                self.frames_processed += 1
                self.recent.append(af)
                if self._on_frame is not None:
                    self._on_frame(af, _level_db(ref))
                out.append(af.clean)
            if not out:
                continue  # less than 10 ms buffered: wait for more (nothing is dropped)
            pcm = np.clip(np.concatenate(out) * 32768.0, -32768, 32767).astype(np.int16)
            return rtc.AudioFrame(pcm.tobytes(), rate, 1, len(pcm))


def _level_db(x: np.ndarray | None) -> float:
    if x is None or len(x) == 0:
        return -120.0
    p = float(np.dot(x, x)) / len(x)
    return 10.0 * float(np.log10(p)) if p > 1e-12 else -120.0
