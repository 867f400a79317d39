"""The playground view: what the plugin decided, published into the room.

While the agent runs in a room, :class:`PlaygroundPublisher` keeps the agent participant's
attributes up to date with the barge-in state and counters, and sends every decision as JSON on the
:data:`DECISIONS_TOPIC` data topic, so someone watching the room (LiveKit's Agents Playground, or
any client reading participant attributes and data messages) sees what the plugin did and why.

The mapping from engine state to attributes and payloads is pure (:func:`view_state`,
:func:`attributes_for`, :func:`decision_payload`); the publisher only schedules the calls and
throttles attribute updates.

Example:
    bargein = BargeIn(profile="speakerphone")
    ...
    bargein.attach(session)
    await session.start(agent, room=ctx.room)
    publisher = PlaygroundPublisher(bargein, ctx.room.local_participant, session=session)
    ctx.add_shutdown_callback(publisher.aclose)
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .decision import Action, ControllerState, Decision
from .log import logger

if TYPE_CHECKING:
    from livekit.agents import AgentSession

    from .engine import BargeIn, BargeInStats, WindowRecord

DECISIONS_TOPIC = "bargein.decisions"
"""Data topic carrying one JSON message per decision (soft yield, resume, interrupt)."""

ATTR_STATE = "bargein.state"
ATTR_PROFILE = "bargein.profile"
ATTR_LAST_TIME_TO_YIELD_MS = "bargein.last_time_to_yield_ms"
ATTR_SOFT_YIELDS = "bargein.soft_yields"
ATTR_RESUMES = "bargein.resumes"
ATTR_INTERRUPTS = "bargein.interrupts"

PAYLOAD_VERSION = 1

ViewState = Literal["speaking", "soft-yield", "interrupted", "listening"]

DEFAULT_MIN_INTERVAL_S = 0.2
"""Attribute updates at most 5 per second: each is a signalling round trip to the server, and a
watcher cannot read faster. Every decision still goes out on the data topic at once."""


class LocalParticipantLike(Protocol):
    """What the publisher needs of ``rtc.LocalParticipant`` (signatures of livekit-rtc 1.1)."""

    async def set_attributes(self, attributes: dict[str, str]) -> None: ...

    async def publish_data(
        self,
        payload: bytes | str,
        *,
        reliable: bool = True,
        destination_identities: list[str] = ...,
        topic: str = "",
    ) -> None: ...


# -- the pure part -------------------------------------------------------------------------------


def view_state(controller_state: ControllerState, *, agent_speaking: bool | None) -> ViewState:
    """The state a watcher sees.

    ``agent_speaking`` is the session's own agent state (True while it is ``"speaking"``), or None
    when unknown. The controller is in ``SPEAKING`` for the whole life of a reply, including while
    the LLM is still thinking; it only shows as ``speaking`` once the session says audio plays.
    """
    if controller_state is ControllerState.SOFT_YIELD:
        return "soft-yield"
    if controller_state is ControllerState.INTERRUPTED:
        return "interrupted"
    if controller_state is ControllerState.SPEAKING and agent_speaking is not False:
        return "speaking"
    return "listening"


def attributes_for(state: ViewState, *, stats: BargeInStats, profile: str) -> dict[str, str]:
    """Participant attributes (LiveKit attributes are str -> str)."""
    ttfy = stats.last_time_to_yield_ms
    return {
        ATTR_STATE: state,
        ATTR_PROFILE: profile,
        # empty until the first soft yield: nothing measured yet
        ATTR_LAST_TIME_TO_YIELD_MS: "" if ttfy is None else f"{ttfy:.0f}",
        ATTR_SOFT_YIELDS: str(stats.soft_yields),
        ATTR_RESUMES: str(stats.resumes),
        ATTR_INTERRUPTS: str(stats.interrupts),
    }


def changed(published: dict[str, str], current: dict[str, str]) -> dict[str, str]:
    """The attributes of ``current`` whose value differs from what was published."""
    return {k: v for k, v in current.items() if published.get(k) != v}


def decision_payload(
    d: Decision, *, state: ViewState, stats: BargeInStats, profile: str, wall_time_ms: float
) -> bytes:
    """One decision as UTF-8 JSON for :data:`DECISIONS_TOPIC`.

    ``t_ms`` is the engine's clock (microphone audio since the session started, from sample
    counts); ``wall_time_ms`` is the agent's Unix time in ms when it was published.
    """
    msg: dict[str, Any] = {
        "v": PAYLOAD_VERSION,
        "type": "decision",
        "action": d.action.value,
        "reason": d.reason,
        "state": state,
        "t_ms": round(d.t_ms, 1),
        "wall_time_ms": round(wall_time_ms),
        "caller_speech_ms": round(d.speech_ms, 1),
        # the onset threshold of the deciding window; null for transcript-driven decisions
        "threshold": round(d.threshold, 3) if math.isfinite(d.threshold) else None,
        # time to yield is the caller speech heard before the pause (see BargeInStats)
        "time_to_yield_ms": round(d.speech_ms, 1) if d.action is Action.SOFT_YIELD else None,
        "soft_yields": stats.soft_yields,
        "resumes": stats.resumes,
        "interrupts": stats.interrupts,
        "profile": profile,
    }
    return json.dumps(msg, allow_nan=False, separators=(",", ":")).encode("utf-8")


# -- the publisher -------------------------------------------------------------------------------


class PlaygroundPublisher:
    """Publishes a :class:`BargeIn`'s state and decisions through a local participant.

    Attributes are sent only when one changed, at most once per ``min_interval_s``; changes inside
    the interval are coalesced into one update carrying the latest values (a soft yield resolved
    within 200 ms may therefore never show in ``bargein.state``; it is on the data topic).
    Failures are logged and never reach the agent.

    Args:
        bargein: the engine to watch.
        local_participant: ``ctx.room.local_participant`` (or anything with its two coroutines).
        session: the ``AgentSession``; its ``agent_state_changed`` events tell when reply audio
            plays. Without it, a reply shows as ``speaking`` from the moment it is created.
        min_interval_s: least time between two attribute updates (0: no throttling).
    """

    def __init__(
        self,
        bargein: BargeIn,
        local_participant: LocalParticipantLike,
        *,
        session: AgentSession | None = None,
        min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
    ) -> None:
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s must be >= 0, got {min_interval_s}")
        self._bargein = bargein
        self._participant = local_participant
        self._session = session
        self._min_interval_s = min_interval_s
        self._loop = asyncio.get_running_loop()
        self._agent_speaking: bool | None = (
            None if session is None else getattr(session, "agent_state", None) == "speaking"
        )
        self._published: dict[str, str] = {}
        self._last_sent_at: float | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        self._last_seen: tuple[ControllerState, str] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        bargein.on("decision", self._on_decision)
        # state changes without a decision (a reply starting or ending) show up on the next window
        bargein.on("window", self._on_window)
        if session is not None:
            session.on("agent_state_changed", self._on_agent_state)
        self._refresh()

    @property
    def published(self) -> dict[str, str]:
        """The attributes as last sent (or being sent)."""
        return dict(self._published)

    def current_state(self) -> ViewState:
        return view_state(self._bargein.controller.state, agent_speaking=self._agent_speaking)

    async def aclose(self) -> None:
        """Stop listening, send the final state and wait for pending publications."""
        if self._closed:
            return
        self._closed = True
        self._bargein.off("decision", self._on_decision)
        self._bargein.off("window", self._on_window)
        if self._session is not None:
            self._session.off("agent_state_changed", self._on_agent_state)
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._send_changes()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- event handlers (on the event loop, inside the engine's per-window path: keep cheap) ----

    def _on_decision(self, d: Decision) -> None:
        try:
            b = self._bargein
            payload = decision_payload(
                d,
                state=self.current_state(),
                stats=b.stats,
                profile=b.profile,
                wall_time_ms=time.time() * 1000.0,
            )
            self._spawn(self._publish(payload), "publish_data")
            self._refresh()
        except Exception:  # the emitter re-raises TypeError: nothing may escape into the engine
            logger.exception("playground: decision not published")

    def _on_window(self, _rec: WindowRecord) -> None:
        try:
            seen = (self._bargein.controller.state, self._bargein.profile)
            if seen != self._last_seen:
                self._refresh()
        except Exception:
            logger.exception("playground: state not refreshed")

    def _on_agent_state(self, ev: Any) -> None:
        try:
            self._agent_speaking = getattr(ev, "new_state", None) == "speaking"
            self._refresh()
        except Exception:
            logger.exception("playground: agent state not refreshed")

    # -- throttled attribute updates ---------------------------------------------------------------

    def _current(self) -> dict[str, str]:
        b = self._bargein
        self._last_seen = (b.controller.state, b.profile)
        return attributes_for(self.current_state(), stats=b.stats, profile=b.profile)

    def _refresh(self) -> None:
        if self._closed or self._flush_timer is not None:
            return  # a flush is due: it will read the latest values
        if not changed(self._published, self._current()):
            return
        now = self._loop.time()
        if self._last_sent_at is None or now - self._last_sent_at >= self._min_interval_s:
            self._send_changes()
        else:
            delay_s = self._last_sent_at + self._min_interval_s - now
            self._flush_timer = self._loop.call_later(delay_s, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        if not self._closed:
            self._send_changes()

    def _send_changes(self) -> None:
        diff = changed(self._published, self._current())
        if not diff:
            return
        self._published.update(diff)
        self._last_sent_at = self._loop.time()
        self._spawn(self._set_attributes(diff), "set_attributes")

    async def _set_attributes(self, diff: dict[str, str]) -> None:
        try:
            await self._participant.set_attributes(diff)
        except Exception as e:
            # forget what did not arrive, so the next change sends it again
            for k, v in diff.items():
                if self._published.get(k) == v:
                    del self._published[k]
            logger.warning("playground: set_attributes failed", extra={"error": repr(e)})

    async def _publish(self, payload: bytes) -> None:
        try:
            await self._participant.publish_data(payload, reliable=True, topic=DECISIONS_TOPIC)
        except Exception as e:
            logger.warning("playground: publish_data failed", extra={"error": repr(e)})

    def _spawn(self, coro: Any, what: str) -> None:
        task = self._loop.create_task(coro, name=f"bargein-playground-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
