"""Keeps the chat context true to what the caller heard (glue around ``context.py``).

* The agent's ``llm_node`` is wrapped on the agent instance (as a subclass override would) to keep
  everything the LLM generated, including text the TTS never reached, and to show the next LLM
  call a note about the interruption. The wrapper changes nothing else: chunks pass through
  unchanged, and a cancelled generation cancels the inner one.
* When LiveKit adds the interrupted assistant message, its content is set to the words heard
  (from the playback tap's position and the TTS's timing) and the rest of the reply goes to
  ``message.extra[EXTRA_KEY]``. The same message object lives in ``agent.chat_ctx`` and
  ``session.history``, so both stay consistent.
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from collections import deque
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import Agent, AgentSession, llm

from .context import (
    DEFAULT_NOTE_TEMPLATE,
    EXTRA_KEY,
    InterruptedReply,
    interrupted_reply,
    interruption_note,
)
from .log import logger
from .taps import PlaybackRecord

_WORD = re.compile(r"[^\W_]+")


@dataclass
class _Generation:
    started_at: float
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)


class ConversationKeeper:
    """Tags interrupted replies with their heard text and unsaid tail; notes them to the LLM.

    Args:
        note_template: Note for the next LLM call (``{heard}``, ``{tail}``); None turns it off.
        note_role: Chat role of the note.
    """

    def __init__(
        self, *, note_template: str | None = DEFAULT_NOTE_TEMPLATE, note_role: str = "system"
    ) -> None:
        self.note_template = note_template
        self.note_role = note_role
        self.last_reply: InterruptedReply | None = None
        self.last_tag_latency_ms: float | None = None
        """Plugin's interrupt decision to the message being tagged (wall clock, ms)."""
        self._generations: deque[_Generation] = deque(maxlen=8)
        self._wrapped: weakref.WeakSet[Agent] = weakref.WeakSet()
        self._playback: PlaybackRecord | None = None
        self._interrupted_at: float | None = None

    # -- wiring -----------------------------------------------------------------------------------

    def attach(self, session: AgentSession) -> None:
        session.on("conversation_item_added", self._on_item_added)
        self.wrap_current(session)

    def on_playback(self, record: PlaybackRecord) -> None:
        """A playback segment finished (from the tap): LiveKit builds the message right after."""
        self._playback = record

    def mark_interrupt(self) -> None:
        self._interrupted_at = time.perf_counter()

    def wrap_agent(self, agent: Agent) -> None:
        """Wrap ``agent.llm_node`` (once) to record generations and add the interruption note."""
        if agent in self._wrapped:
            return
        self._wrapped.add(agent)
        inner = agent.llm_node
        keeper = self

        async def llm_node(
            chat_ctx: llm.ChatContext, tools: list[Any], model_settings: Any
        ) -> AsyncIterable[Any]:
            gen = _Generation(started_at=time.monotonic())
            keeper._generations.append(gen)
            out = inner(keeper.with_note(chat_ctx), tools, model_settings)
            if asyncio.iscoroutine(out):
                out = await out
            if isinstance(out, str):
                gen.parts.append(out)
                yield out
                return
            if out is None:
                return
            try:
                async for chunk in out:
                    text = _chunk_text(chunk)
                    if text:
                        gen.parts.append(text)
                    yield chunk
            finally:
                aclose = getattr(out, "aclose", None)
                if aclose is not None:
                    await aclose()

        agent.llm_node = llm_node  # type: ignore[method-assign]

    def wrap_current(self, session: AgentSession) -> None:
        """Wrap the session's current agent (after a handoff too); no-op before start."""
        try:
            agent = session.current_agent
        except RuntimeError:
            return  # not started yet
        self.wrap_agent(agent)

    # -- the next turn ----------------------------------------------------------------------------

    def with_note(self, chat_ctx: llm.ChatContext) -> llm.ChatContext:
        """``chat_ctx`` with the note after the latest assistant message, if it was cut off.

        A copy: the note is for this call only and never enters the stored history.
        """
        if self.note_template is None:
            return chat_ctx
        items = chat_ctx.items
        for i in range(len(items) - 1, -1, -1):
            item = items[i]
            if getattr(item, "type", None) != "message" or item.role != "assistant":
                continue
            data = (item.extra or {}).get(EXTRA_KEY)
            if not item.interrupted or not isinstance(data, dict):
                return chat_ctx
            reply = InterruptedReply(
                heard_text=str(data.get("heard_text", "")),
                unspoken_tail=str(data.get("unspoken_tail", "")),
                full_text=str(data.get("full_text", "")),
                played_ms=float(data.get("played_ms", 0.0)),
                heard_from=str(data.get("heard_from", "")),
            )
            note = interruption_note(self.note_template, reply)
            if note is None:
                return chat_ctx
            ctx = chat_ctx.copy()
            ctx.items.insert(i + 1, llm.ChatMessage(role=self.note_role, content=[note]))  # type: ignore[arg-type]
            return ctx
        return chat_ctx

    # -- tagging the interrupted message --------------------------------------------------------

    def _on_item_added(self, ev: Any) -> None:
        msg = ev.item
        if getattr(msg, "type", None) != "message" or msg.role != "assistant":
            return
        if not msg.interrupted:
            return
        try:
            self.tag(msg)
        except Exception:  # never break the session over bookkeeping
            logger.exception("could not tag the interrupted message")

    def tag(self, msg: llm.ChatMessage) -> InterruptedReply | None:
        """Rewrite an interrupted assistant message to the heard text; keep the tail in extra."""
        said = msg.text_content or ""
        gen = self._generation_for(said)
        if gen is None:
            return None
        pb = self._playback
        reply = interrupted_reply(
            full_text=gen.text,
            spoken=pb.spoken if pb is not None else [],
            played_s=pb.position_s if pb is not None else 0.0,
            audio_end_s=pb.audio_s if pb is not None else None,
            synchronized_text=said,
        )
        msg.content = [reply.heard_text]
        msg.extra[EXTRA_KEY] = reply.as_extra()
        self._generations.remove(gen)
        self._playback = None
        self.last_reply = reply
        if self._interrupted_at is not None:
            self.last_tag_latency_ms = (time.perf_counter() - self._interrupted_at) * 1000.0
            msg.extra[EXTRA_KEY]["interrupt_to_tag_ms"] = round(self.last_tag_latency_ms, 1)
            self._interrupted_at = None
        return reply

    def _generation_for(self, said: str) -> _Generation | None:
        """The newest generation whose text begins with what the message says.

        Not simply the newest: LiveKit may already be generating the caller's next reply
        (preemptive generation) when the interrupted message is added.
        """
        said_words = _words(said)
        for gen in reversed(self._generations):
            if _words(gen.text)[: len(said_words)] == said_words and gen.text.strip():
                return gen
        return None


def _chunk_text(chunk: Any) -> str | None:
    if isinstance(chunk, str):
        return chunk
    if isinstance(chunk, llm.ChatChunk) and chunk.delta is not None:
        return chunk.delta.content
    return None


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())
