"""A scripted LLM for the replay evaluator: fixed replies, streamed at a real LLM's pace.

LiveKit's interruption paths cancel the LLM task mid-stream, so the stand-in streams token by token
with a time-to-first-token and a token rate, stops as soon as its stream is closed, and logs what
it produced and when (loop time), so the harness can count the tokens generated after a barge-in.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import llm, utils
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)

__all__ = ["LLMCallRecord", "ScriptedLLM", "split_tokens"]

DEFAULT_REPLY = "Okay."

# A word with its leading whitespace, or one punctuation mark: close to what a BPE vocabulary
# yields for plain English (" Hello", ",", " how").
_PIECE_RE = re.compile(r"\s*(?:[\w']+|[^\w\s])")
_MAX_WORD_TOKEN_CHARS = 6
_SUBWORD_CHARS = 4


def split_tokens(text: str) -> list[str]:
    """Split text into BPE-like tokens (~4 characters, leading space attached).

    ``"".join(split_tokens(text)) == text`` always holds.

    Args:
        text: The reply text.

    Returns:
        The tokens, in order.
    """
    tokens: list[str] = []
    pos = 0
    for m in _PIECE_RE.finditer(text):
        if m.start() != pos:  # characters the pattern skipped (cannot happen for str input)
            tokens.append(text[pos : m.start()])
        piece = m.group()
        pos = m.end()
        if len(piece) <= _MAX_WORD_TOKEN_CHARS:
            tokens.append(piece)
            continue
        # Long words become several sub-word tokens; a 1-char remainder joins the last one.
        parts = [piece[i : i + _SUBWORD_CHARS] for i in range(0, len(piece), _SUBWORD_CHARS)]
        if len(parts) > 1 and len(parts[-1]) == 1:
            tail = parts.pop()
            parts[-1] += tail
        tokens.extend(parts)
    if pos < len(text):  # trailing whitespace
        if tokens:
            tokens[-1] += text[pos:]
        else:
            tokens.append(text[pos:])
    return tokens


@dataclass
class LLMCallRecord:
    """What one ``chat()`` call saw and produced."""

    chat_ctx: llm.ChatContext
    """A copy of the context the call was made with."""
    reply: str
    """The full reply the call was scripted to stream."""
    started_at: float
    """Loop time (``loop.time()``, s) when ``chat()`` was called."""
    token_log: list[tuple[float, str]] = field(default_factory=list)
    """(loop time in s, token) for every token sent to the stream."""
    completed_at: float | None = None
    """Loop time when the last token was sent (None: never completed)."""
    closed_at: float | None = None
    """Loop time when the stream was closed or cancelled before completing (None: it was not)."""
    delivered: list[str] = field(default_factory=list)
    """Tokens the consumer (the agent's ``llm_node``) took from the stream, in order."""

    @property
    def emitted_text(self) -> str:
        return "".join(tok for _, tok in self.token_log)

    @property
    def delivered_text(self) -> str:
        """What the agent received. Less than ``emitted_text`` when a token was sent into the
        stream after the framework had stopped reading it (it cancels its inference task before
        the stream): that token was never part of the agent's reply."""
        return "".join(self.delivered)

    @property
    def cancelled(self) -> bool:
        return self.completed_at is None and self.closed_at is not None


class ScriptedLLM(llm.LLM):
    """LLM stand-in that streams scripted replies token by token at a realistic pace.

    Args:
        replies: Reply texts consumed in order, one per ``chat()`` call, or a callable mapping the
            call's chat context to the reply. When the list runs out, ``default_reply`` is used.
        ttft_ms: Delay from ``chat()`` to the first token.
        tokens_per_s: Token rate after the first token.
        default_reply: Reply once ``replies`` is exhausted.
    """

    def __init__(
        self,
        *,
        replies: Sequence[str] | Callable[[llm.ChatContext], str] = (),
        ttft_ms: float = 250.0,
        tokens_per_s: float = 40.0,
        default_reply: str = DEFAULT_REPLY,
    ) -> None:
        super().__init__()
        if ttft_ms < 0:
            raise ValueError("ttft_ms must be >= 0")
        if tokens_per_s <= 0:
            raise ValueError("tokens_per_s must be > 0")
        self._reply_fn = replies if callable(replies) else None
        self._replies: list[str] = [] if callable(replies) else list(replies)
        self._ttft_ms = ttft_ms
        self._tokens_per_s = tokens_per_s
        self._default_reply = default_reply
        self.records: list[LLMCallRecord] = []
        """One record per ``chat()`` call, in call order."""

    @property
    def model(self) -> str:
        return "scripted"

    @property
    def provider(self) -> str:
        return "livekit-bargein"

    @property
    def calls(self) -> list[llm.ChatContext]:
        """The chat context of every call so far (copies taken at call time)."""
        return [r.chat_ctx for r in self.records]

    def push_replies(self, *replies: str) -> None:
        """Append replies to the script (only when constructed with a list)."""
        if self._reply_fn is not None:
            raise RuntimeError("replies come from a callable")
        self._replies.extend(replies)

    def tokens_emitted_after(self, t_loop: float, *, call_index: int | None = None) -> int:
        """Tokens sent strictly after loop time ``t_loop``.

        Args:
            t_loop: A ``loop.time()`` value, e.g. when the harness saw the interruption.
            call_index: Only count this call (index into ``records``); default: all calls.

        Returns:
            The number of tokens.
        """
        recs = self.records if call_index is None else [self.records[call_index]]
        return sum(1 for r in recs for t, _ in r.token_log if t > t_loop)

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> ScriptedLLMStream:
        if self._reply_fn is not None:
            reply = self._reply_fn(chat_ctx)
        elif self._replies:
            reply = self._replies.pop(0)
        else:
            reply = self._default_reply
        record = LLMCallRecord(
            chat_ctx=_snapshot(chat_ctx),
            reply=reply,
            started_at=asyncio.get_running_loop().time(),
        )
        self.records.append(record)
        return ScriptedLLMStream(
            self,
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=conn_options,
            record=record,
            ttft_s=self._ttft_ms / 1000.0,
            token_interval_s=1.0 / self._tokens_per_s,
        )


class ScriptedLLMStream(llm.LLMStream):
    """Stream of one scripted reply; see ``ScriptedLLM``."""

    def __init__(
        self,
        llm_: ScriptedLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
        record: LLMCallRecord,
        ttft_s: float,
        token_interval_s: float,
    ) -> None:
        # The base class starts the _run task; everything _run reads must exist before.
        self._record = record
        self._ttft_s = ttft_s
        self._token_interval_s = token_interval_s
        self._request_id = utils.shortuuid("scripted_")
        super().__init__(llm_, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)

    @property
    def record(self) -> LLMCallRecord:
        return self._record

    async def __anext__(self) -> llm.ChatChunk:
        chunk = await super().__anext__()
        if chunk.delta is not None and chunk.delta.content:
            self._record.delivered.append(chunk.delta.content)
        return chunk

    async def _run(self) -> None:
        rec = self._record
        loop = asyncio.get_running_loop()
        tokens = split_tokens(rec.reply)
        try:
            for i, tok in enumerate(tokens):
                # Deadlines on an absolute schedule, so event-loop lag does not accumulate.
                deadline = rec.started_at + self._ttft_s + i * self._token_interval_s
                delay = deadline - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                self._event_ch.send_nowait(
                    llm.ChatChunk(
                        id=self._request_id,
                        delta=llm.ChoiceDelta(role="assistant", content=tok),
                    )
                )
                rec.token_log.append((loop.time(), tok))
            rec.completed_at = loop.time()
            self._event_ch.send_nowait(
                llm.ChatChunk(
                    id=self._request_id,
                    usage=llm.CompletionUsage(
                        completion_tokens=len(tokens),
                        prompt_tokens=0,
                        total_tokens=len(tokens),
                    ),
                )
            )
        finally:
            if rec.completed_at is None and rec.closed_at is None:
                rec.closed_at = loop.time()


def _snapshot(chat_ctx: llm.ChatContext) -> llm.ChatContext:
    # The session keeps editing its context (truncating the interrupted message, appending the
    # next turn), so keep an independent copy of what this call saw.
    items = chat_ctx.copy().items
    try:
        return llm.ChatContext([item.model_copy(deep=True) for item in items])
    except Exception:  # an item that cannot be deep-copied: fall back to a shallow copy
        return llm.ChatContext(list(items))
