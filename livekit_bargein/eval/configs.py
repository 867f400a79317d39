"""Named configurations the evaluator runs side by side.

A configuration decides how the session is built for one scenario: its interruption options, its
VAD, and what wraps the microphone and the speaker. ``livekit-*`` are LiveKit 1.8.9's own paths;
the barge-in engine registers itself here as ``bargein`` (and one config per profile).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import vad as lk_vad
from livekit.agents.voice import Agent, AgentSession, io

from .speaker import SimSpeaker


@dataclass
class HarnessContext:
    """What a configuration may use to build one scenario's session."""

    sample_rate_hz: int
    speaker: SimSpeaker
    """The simulated loudspeaker; ``add_played_listener`` gives the exact played reference."""
    silero: lk_vad.VAD
    """The process' loaded Silero VAD (LiveKit's plugin, default options)."""
    scenario_id: str = ""
    config_name: str = ""
    decision_trace_dir: Path | None = None
    """Root of the per-scenario decision traces (None: don't write them)."""

    @property
    def decision_trace_path(self) -> Path | None:
        """``DIR/CONFIG/ID.jsonl`` for a configuration that writes a decision trace."""
        if self.decision_trace_dir is None or not self.scenario_id:
            return None
        config_dir = self.decision_trace_dir / (self.config_name or "unnamed")
        return config_dir / f"{self.scenario_id}.jsonl"


class ConfigSetup(ABC):
    """One scenario's wiring. Subclasses override what they need."""

    @abstractmethod
    def session_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AgentSession`` (at least ``vad`` and ``turn_handling``)."""

    def wrap_input(self, mic: io.AudioInput) -> io.AudioInput:
        return mic

    def wrap_output(self, out: io.AudioOutput) -> io.AudioOutput:
        return out

    def build_session(self, **kwargs: Any) -> AgentSession:
        """The scenario's session from the harness' arguments (offline STT, LLM, TTS and
        ``session_kwargs()``); override to build it with an application's own factory."""
        return AgentSession(**kwargs)

    def agent(self) -> Agent | None:
        """The agent to start (None: the harness' own, which replies as soon as it enters)."""
        return None

    def before_session_start(self, session: AgentSession) -> None:  # noqa: B027 - optional hook
        """Called after the session's audio is wired, right before ``session.start()``."""

    def on_session_started(self, session: AgentSession) -> None:  # noqa: B027 - optional hook
        """Called once the session has started (attach event handlers here)."""

    def trace_events(self) -> list[dict[str, Any]]:
        """Decisions to add to the scenario's trace: {"sample": int, "kind": str, ...}."""
        return []

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        pass


@dataclass(frozen=True)
class EvalConfig:
    name: str
    description: str
    make: Callable[[HarnessContext], ConfigSetup] = field(repr=False)


_REGISTRY: dict[str, EvalConfig] = {}


def register(config: EvalConfig) -> None:
    _REGISTRY[config.name] = config


def get_config(name: str) -> EvalConfig:
    _ensure_plugin_configs()
    if name not in _REGISTRY and "@" in name:
        from ..eval_configs import parse_variant

        variant = parse_variant(name)
        if variant is not None:
            register(variant)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown configuration '{name}' (known: {', '.join(sorted(_REGISTRY))})"
        ) from None


def config_names() -> list[str]:
    _ensure_plugin_configs()
    return list(_REGISTRY)


def _ensure_plugin_configs() -> None:
    # The engine's configurations live with the engine; importing registers them.
    try:
        from .. import eval_configs  # noqa: F401
    except ImportError:
        pass


# -- LiveKit's own paths --------------------------------------------------------------------------


class _LiveKitSetup(ConfigSetup):
    def __init__(self, ctx: HarnessContext, *, min_duration_s: float, agent_aec: bool) -> None:
        self._ctx = ctx
        self._min_duration_s = min_duration_s
        self._agent_aec = agent_aec

    def session_kwargs(self) -> dict[str, Any]:
        # LiveKit 1.8.9 defaults except min_duration: VAD mode, pause + resume after 2.0 s.
        return {
            "vad": self._ctx.silero,
            "turn_handling": {
                "turn_detection": "vad",
                "interruption": {"mode": "vad", "min_duration": self._min_duration_s},
            },
        }

    def wrap_input(self, mic: io.AudioInput) -> io.AudioInput:
        if not self._agent_aec:
            return mic
        return ApmAudioInput(mic, speaker=self._ctx.speaker)


class ApmAudioInput(io.AudioInput):
    """Agent-side WebRTC APM (AEC3 + noise suppression + high-pass) with the played reference.

    The reference is what the speaker played in the same 10 ms tick, so it is exact and aligned;
    the echo path's own delay is left for AEC3 to estimate, as it must on a real call.
    """

    def __init__(self, source: io.AudioInput, *, speaker: SimSpeaker) -> None:
        super().__init__(label="ApmAEC", source=source)
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=True, noise_suppression=True, high_pass_filter=True
        )
        self._rate = speaker.sample_rate_hz
        self._ref: asyncio.Queue[np.ndarray] = asyncio.Queue()
        speaker.add_played_listener(self._ref.put_nowait)

    async def __anext__(self) -> rtc.AudioFrame:
        frame = await super().__anext__()
        while not self._ref.empty():
            ref = self._ref.get_nowait()
            pcm = np.clip(ref * 32768.0, -32768, 32767).astype(np.int16)
            rev = rtc.AudioFrame(pcm.tobytes(), self._rate, 1, len(pcm))
            self._apm.process_reverse_stream(rev)
        self._apm.process_stream(frame)
        return frame


register(
    EvalConfig(
        name="livekit-default",
        description=(
            "LiveKit 1.8.9 defaults: VAD interruption, min_duration 0.5 s, pause/resume 2.0 s"
        ),
        make=lambda ctx: _LiveKitSetup(ctx, min_duration_s=0.5, agent_aec=False),
    )
)
register(
    EvalConfig(
        name="livekit-fast",
        description="livekit-default with min_duration 0.2 s",
        make=lambda ctx: _LiveKitSetup(ctx, min_duration_s=0.2, agent_aec=False),
    )
)
register(
    EvalConfig(
        name="livekit-aec",
        description="livekit-default plus agent-side WebRTC APM AEC with the played reference",
        make=lambda ctx: _LiveKitSetup(ctx, min_duration_s=0.5, agent_aec=True),
    )
)
