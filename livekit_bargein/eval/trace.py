"""What the harness records for one scenario run: the input of the metrics.

Everything is measured in the simulation's sample clock (16 kHz, 10 ms ticks), never in wall time:
tick ``n`` covers samples ``[n * TICK_SAMPLES, (n + 1) * TICK_SAMPLES)``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

SIM_RATE_HZ = 16_000
TICK_MS = 10
TICK_SAMPLES = SIM_RATE_HZ * TICK_MS // 1000


class SpeakerState(str, Enum):
    """State of the simulated speaker for the first agent reply, one per 10 ms tick."""

    PENDING = "pending"
    """The reply has not started playing yet."""
    PLAYING = "playing"
    """Agent samples reached the speaker during this tick (``played_samples[n] > 0``)."""
    PAUSED = "paused"
    """The output chain paused playout; audio is still buffered or still to come."""
    UNDERRUN = "underrun"
    """Segment open, not paused, nothing buffered (TTS starvation): not a yield."""
    CLEARED = "cleared"
    """The reply was stopped (``clear_buffer``) before all of it played."""
    DONE = "done"
    """The reply played to its end."""


@dataclass
class WordTiming:
    """A word of the reply and where its audio lies in the reply's own sample clock (16 kHz)."""

    word: str
    start_sample: int
    end_sample: int


@dataclass
class ContextRecord:
    """The chat context as the harness found it after the first reply ended."""

    full_reply_text: str
    """The whole reply the LLM was scripted to say (``agent_text``)."""
    message_text: str | None = None
    """Text of the first assistant message in the chat context (None: no message)."""
    message_interrupted: bool | None = None
    unspoken_tail: str | None = None
    """Tail preserved in ``ChatMessage.extra`` (see ``livekit_bargein.context.EXTRA_KEY``)."""
    heard_text: str | None = None
    """Ground truth: words whose audio had started playing when the reply stopped."""
    next_call_note: str | None = None
    """System note right after the first reply in the LLM's next call (None: none)."""


@dataclass
class ScenarioTrace:
    """One scenario run under one configuration."""

    scenario_id: str
    label: str
    config: str
    sample_rate_hz: int = SIM_RATE_HZ
    tick_samples: int = TICK_SAMPLES
    speaker_states: list[str] = field(default_factory=list)
    """SpeakerState value per tick for the first reply, from tick 0 of the run."""
    played_samples: list[int] = field(default_factory=list)
    """Agent samples of the first reply that reached the speaker in each tick (0..tick_samples)."""
    first_audible_sample: int | None = None
    """Sim-clock sample of the first audible agent sample (t = 0 of the scenario's timeline)."""
    user_onset_sample: int | None = None
    """Sim-clock sample where ``user_audio`` starts (None for echo_only)."""
    user_voiced_sample: int | None = None
    """Sim-clock sample of the user's first voiced sample (``user_onset_s + speech_start_s``)."""
    user_end_sample: int | None = None
    reply_completed: bool = False
    """The first reply played to its end (``playback_finished`` not interrupted)."""
    reply_audio_samples: int | None = None
    """Length of the reply's full audio when known (all of it synthesized)."""
    words: list[WordTiming] = field(default_factory=list)
    context: ContextRecord | None = None
    llm_tokens_after_cancel: int = 0
    llm_cancel_after_stop_ms: float | None = None
    """The first reply's audio was stopped (clear_buffer) → its LLM stream closed (None: the
    stream had completed before, or the reply was not stopped)."""
    context_after_stop_ms: float | None = None
    """The first reply's audio was stopped → its assistant message entered the chat context."""
    max_tick_lag_ms: float = 0.0
    """Worst lateness of the harness' 10 ms clock against wall time (event-loop distortion)."""
    max_tick_lag_tick: int | None = None
    """The tick at which the worst lateness was seen."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Timestamped session events: {"sample": int, "kind": str, ...} (pause, resume, clear, ...)."""
    vad_probability: list[tuple[int, float]] = field(default_factory=list)
    """(sim sample, probability) of the session's VAD inferences, for timelines."""
    agent_level_db: list[float] = field(default_factory=list)
    """Per-tick RMS level of the agent audio played, dBFS (timelines)."""
    mic_level_db: list[float] = field(default_factory=list)
    """Per-tick RMS level of the microphone signal fed to the session, dBFS (timelines)."""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioTrace:
        data = dict(data)
        data["words"] = [WordTiming(**w) for w in data.get("words", [])]
        if data.get("context") is not None:
            data["context"] = ContextRecord(**data["context"])
        data["vad_probability"] = [tuple(p) for p in data.get("vad_probability", [])]
        return cls(**data)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: Path) -> ScenarioTrace:
        return cls.from_json(json.loads(path.read_text()))
