"""A barge-in-aware end-of-turn detector (LiveKit's turn-detector protocol).

It wraps an inner end-of-turn model (LiveKit's ``MultilingualModel`` where installed, or none) and
adds what only the barge-in context knows:

* a backchannel ("uh-huh", "okay") never ends a user turn, unless it answers the agent's question;
* right after a real interruption the caller gets time to finish: a short fragment or one that
  ends on a hesitation ("wait —", "actually") is unlikely to be the end of the turn, so LiveKit
  waits its ``max_delay`` before committing it ("wait — actually, can we make it Thursday").

A low probability does not drop the words: LiveKit only waits longer before committing them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from livekit.agents import llm

from .context import EXTRA_KEY
from .decision import words_of
from .options import BargeInOptions

UNLIKELY = 0.01
"""Probability given to a turn that is very unlikely to be over (below any threshold)."""
DEFAULT_THRESHOLD = 0.5
"""``unlikely_threshold`` without an inner model."""
HESITATION_WORDS: frozenset[str] = frozenset(
    {
        "wait",
        "actually",
        "um",
        "uh",
        "uhm",
        "er",
        "hmm",
        "so",
        "and",
        "but",
        "or",
        "like",
        "well",
        "hold",
        "sorry",
        "no",
    }
)


def end_of_turn_probability(
    user_text: str,
    *,
    after_interrupt: bool,
    agent_asked: bool,
    backchannel_words: Iterable[str],
    inner_probability: float | None,
    min_words_after_interrupt: int = 4,
) -> float:
    """The turn-end probability for ``user_text`` given the barge-in context (pure).

    Args:
        user_text: The caller's words so far in this turn.
        after_interrupt: The agent's latest reply was cut off by the caller.
        agent_asked: The agent's latest reply ended with a question.
        backchannel_words: Words that are only acknowledgements.
        inner_probability: The inner model's probability (None: no inner model).
        min_words_after_interrupt: Fewer words than this right after an interruption count as
            a fragment.
    """
    words = words_of(user_text)
    default = 1.0 if inner_probability is None else inner_probability
    if not words:
        return default
    backchannels = set(backchannel_words)
    if all(w in backchannels for w in words) and not agent_asked:
        return UNLIKELY
    if after_interrupt and (
        len(words) < min_words_after_interrupt or words[-1] in HESITATION_WORDS
    ):
        return UNLIKELY
    return default


class BargeInTurnDetector:
    """LiveKit turn detector: ``AgentSession(turn_handling={"turn_detection": detector, ...})``.

    Args:
        options: The barge-in options (for the backchannel lexicon).
        inner: Another turn detector to ask first (e.g. ``MultilingualModel()``), or None.
    """

    def __init__(self, options: BargeInOptions | None = None, *, inner: Any | None = None) -> None:
        self._options = options if options is not None else BargeInOptions()
        self._inner = inner

    def update_options(self, options: BargeInOptions) -> None:
        self._options = options

    @property
    def model(self) -> str:
        return f"bargein+{self._inner.model}" if self._inner is not None else "bargein"

    @property
    def provider(self) -> str:
        return "livekit-bargein"

    async def unlikely_threshold(self, language: Any) -> float | None:
        if self._inner is not None:
            t = await self._inner.unlikely_threshold(language)
            return t if t is not None else DEFAULT_THRESHOLD
        return DEFAULT_THRESHOLD

    async def supports_language(self, language: Any) -> bool:
        return True if self._inner is None else bool(await self._inner.supports_language(language))

    async def predict_end_of_turn(
        self, chat_ctx: llm.ChatContext, *, timeout: float | None = None
    ) -> float:
        user_text, assistant = _last_turns(chat_ctx)
        inner_p: float | None = None
        if self._inner is not None:
            inner_p = await self._inner.predict_end_of_turn(chat_ctx, timeout=timeout)
        after_interrupt = bool(
            assistant is not None and assistant.interrupted and EXTRA_KEY in (assistant.extra or {})
        )
        asked = bool(
            assistant is not None and (assistant.text_content or "").rstrip().endswith("?")
        )
        return end_of_turn_probability(
            user_text,
            after_interrupt=after_interrupt,
            agent_asked=asked and not after_interrupt,
            backchannel_words=self._options.backchannel_words,
            inner_probability=inner_p,
        )


def _last_turns(chat_ctx: llm.ChatContext) -> tuple[str, llm.ChatMessage | None]:
    """The caller's text since the latest assistant message, and that message."""
    user_parts: list[str] = []
    for item in reversed(chat_ctx.items):
        if getattr(item, "type", None) != "message":
            continue
        if item.role == "assistant":
            return " ".join(reversed(user_parts)), item
        if item.role == "user":
            user_parts.append(item.text_content or "")
    return " ".join(reversed(user_parts)), None
