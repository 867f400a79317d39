"""A simulated loudspeaker: the leaf ``io.AudioOutput`` of the evaluator's session.

It buffers what the session captures and plays it out only when the harness' 10 ms clock pulls a
tick, so it knows sample-exactly what reached the "speaker" and when. Pause freezes the playhead
(resume continues from the same sample); ``clear_buffer`` drops the rest of the segment.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc
from livekit.agents.voice import io

from .trace import SpeakerState


@dataclass
class _Segment:
    index: int
    buffered: deque[np.ndarray] = field(default_factory=deque)
    buffered_samples: int = 0
    played_samples: int = 0
    captured_samples: int = 0
    flushed: bool = False
    started: bool = False
    interrupted: bool = False
    finished: bool = False


class SimSpeaker(io.AudioOutput):
    """Leaf audio sink paced by :meth:`pull`; records what played, tick by tick."""

    def __init__(self, *, sample_rate_hz: int = 16_000) -> None:
        super().__init__(
            label="SimSpeaker",
            capabilities=io.AudioOutputCapabilities(pause=True),
            sample_rate=sample_rate_hz,
        )
        self.sample_rate_hz = sample_rate_hz
        self._segments: list[_Segment] = []
        self._current: _Segment | None = None  # segment being captured
        self._playing: deque[_Segment] = deque()  # captured, not yet finished, in order
        self._paused = False
        self._tick = 0
        self.states: list[str] = []
        """SpeakerState of the first segment, per tick pulled."""
        self.first_played: list[int] = []
        """Samples of the first segment played, per tick pulled."""
        self.events: list[dict[str, object]] = []
        self._played_listeners: list[Callable[[np.ndarray], None]] = []
        self.first_segment_finished_at_tick: int | None = None
        self.first_segment_cleared_at_loop_time: float | None = None

    # -- observation --------------------------------------------------------------------------

    def add_played_listener(self, cb: Callable[[np.ndarray], None]) -> None:
        """``cb(chunk)`` receives every tick's played audio (float32, zeros when silent)."""
        self._played_listeners.append(cb)

    @property
    def first_segment(self) -> _Segment | None:
        return self._segments[0] if self._segments else None

    def _event(self, kind: str, **data: object) -> None:
        self.events.append({"tick": self._tick, "kind": kind, **data})

    # -- io.AudioOutput -----------------------------------------------------------------------

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if frame.sample_rate != self.sample_rate_hz or frame.num_channels != 1:
            raise ValueError(
                f"SimSpeaker expects mono {self.sample_rate_hz} Hz frames, got "
                f"{frame.num_channels} ch {frame.sample_rate} Hz"
            )
        if self._current is None:
            seg = _Segment(index=len(self._segments))
            self._segments.append(seg)
            self._playing.append(seg)
            self._current = seg
            self._event("segment_captured", segment=seg.index)
        seg = self._current
        if seg.interrupted:
            return  # frames still in flight after clear_buffer are dropped, as RoomIO does
        pcm = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
        seg.buffered.append(pcm)
        seg.buffered_samples += len(pcm)
        seg.captured_samples += len(pcm)

    def flush(self) -> None:
        super().flush()
        seg = self._current
        self._current = None
        if seg is None:
            return
        seg.flushed = True
        self._event("flush", segment=seg.index)
        if seg.interrupted:
            self._finish(seg)

    def clear_buffer(self) -> None:
        for seg in list(self._playing):
            if seg.finished:
                continue
            seg.buffered.clear()
            seg.buffered_samples = 0
            seg.interrupted = True
            self._event("clear", segment=seg.index, position_samples=seg.played_samples)
            if seg.index == 0 and self.first_segment_cleared_at_loop_time is None:
                self.first_segment_cleared_at_loop_time = _loop_time()
            if seg.flushed:
                self._finish(seg)

    def pause(self) -> None:
        if not self._paused:
            self._event("pause")
        self._paused = True

    def resume(self) -> None:
        if self._paused:
            self._event("resume")
        self._paused = False

    # -- playout clock ------------------------------------------------------------------------

    def pull(self, n_samples: int) -> np.ndarray:
        """Play one tick: return the samples that reach the speaker (zeros where silent)."""
        out = np.zeros(n_samples, dtype=np.float32)
        first = self.first_segment
        first_played = 0
        filled = 0
        while not self._paused and filled < n_samples and self._playing:
            seg = self._playing[0]
            if seg.buffered_samples == 0:
                if seg.flushed or seg.interrupted:
                    self._finish(seg)
                    continue
                break  # underrun: the segment is open but nothing is buffered
            if not seg.started:
                seg.started = True
                self._event("playback_started", segment=seg.index, offset=filled)
                self.on_playback_started(created_at=time.time())
            chunk = seg.buffered[0]
            take = min(len(chunk), n_samples - filled)
            out[filled : filled + take] = chunk[:take]
            if take == len(chunk):
                seg.buffered.popleft()
            else:
                seg.buffered[0] = chunk[take:]
            seg.buffered_samples -= take
            seg.played_samples += take
            if seg is first:
                first_played += take
            filled += take
            if seg.buffered_samples == 0 and seg.flushed:
                self._finish(seg)
        self.states.append(self._first_state(first, first_played).value)
        self.first_played.append(first_played)
        for cb in self._played_listeners:
            cb(out)
        self._tick += 1
        return out

    def _first_state(self, first: _Segment | None, played: int) -> SpeakerState:
        if first is None or not (first.started or first.finished):
            return SpeakerState.PENDING
        if played > 0:
            return SpeakerState.PLAYING
        if first.finished:
            return SpeakerState.CLEARED if first.interrupted else SpeakerState.DONE
        if self._paused:
            return SpeakerState.PAUSED
        return SpeakerState.UNDERRUN

    def _finish(self, seg: _Segment) -> None:
        if seg.finished:
            return
        seg.finished = True
        if seg in self._playing:
            self._playing.remove(seg)
        self._event(
            "playback_finished",
            segment=seg.index,
            interrupted=seg.interrupted,
            position_samples=seg.played_samples,
        )
        if seg.index == 0:
            self.first_segment_finished_at_tick = self._tick
        self.on_playback_finished(
            playback_position=seg.played_samples / self.sample_rate_hz,
            interrupted=seg.interrupted,
        )


def _loop_time() -> float:
    import asyncio

    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()
