"""ConversationKeeper: generations recorded through llm_node, interrupted messages tagged, the note
seen by the next LLM call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from types import SimpleNamespace
from typing import Any

from livekit.agents import Agent, llm

from livekit_bargein.context import EXTRA_KEY, TimedText
from livekit_bargein.conversation import ConversationKeeper
from livekit_bargein.taps import PlaybackRecord

REPLY = "The headphones cost one hundred dollars. Shipping is free until Sunday."


class _StreamingAgent(Agent):
    """A user-style llm_node override that streams a reply and records what it was given."""

    def __init__(self, reply: str, *, token_delay_s: float = 0.0) -> None:
        super().__init__(instructions="test")
        self.reply = reply
        self.token_delay_s = token_delay_s
        self.seen: list[llm.ChatContext] = []
        self.closed = False

    async def llm_node(  # type: ignore[override]
        self, chat_ctx: llm.ChatContext, tools: list[Any], model_settings: Any
    ) -> AsyncIterable[str]:
        self.seen.append(chat_ctx)
        try:
            for tok in self.reply.split(" "):
                await asyncio.sleep(self.token_delay_s)
                yield tok + " "
        finally:
            self.closed = True


async def _drain(agent: Agent, ctx: llm.ChatContext, n: int | None = None) -> str:
    out = []
    gen = agent.llm_node(ctx, [], None)
    async for chunk in gen:  # type: ignore[union-attr]
        out.append(chunk)
        if n is not None and len(out) >= n:
            await gen.aclose()  # type: ignore[union-attr]
            break
    return "".join(out)


def _playback(played_s: float, *, step_s: float = 0.3) -> PlaybackRecord:
    spoken = [TimedText(w + " ", i * step_s, None) for i, w in enumerate(REPLY.split())]
    return PlaybackRecord(position_s=played_s, interrupted=True, audio_s=6.0, spoken=spoken)


def _message(text: str) -> llm.ChatMessage:
    return llm.ChatMessage(role="assistant", content=[text], interrupted=True)


async def _cut_off_after_the(keeper: ConversationKeeper) -> tuple[_StreamingAgent, llm.ChatMessage]:
    """REPLY generated, then stopped 0.35 s in (the caller heard "The headphones")."""
    agent = _StreamingAgent(REPLY)
    keeper.wrap_agent(agent)
    await _drain(agent, llm.ChatContext.empty())
    keeper.on_playback(_playback(0.35))
    msg = _message("The")
    keeper._on_item_added(SimpleNamespace(item=msg))
    return agent, msg


def _history(msg: llm.ChatMessage, user_text: str) -> llm.ChatContext:
    history = llm.ChatContext.empty()
    history.items.append(msg)
    history.add_message(role="user", content=user_text)
    return history


async def test_interrupted_message_keeps_heard_text_and_tail() -> None:
    keeper = ConversationKeeper()
    agent = _StreamingAgent(REPLY)
    keeper.wrap_agent(agent)
    keeper.wrap_agent(agent)  # idempotent
    assert (await _drain(agent, llm.ChatContext.empty())).strip() == REPLY

    keeper.on_playback(_playback(0.95))  # words start at 0, .3, .6, .9 -> 4 heard
    msg = _message("The headphones cost")  # LiveKit's synchronized estimate, one word short
    keeper._on_item_added(SimpleNamespace(item=msg))
    assert msg.text_content == "The headphones cost one"
    data = msg.extra[EXTRA_KEY]
    assert data["unspoken_tail"] == "hundred dollars. Shipping is free until Sunday."
    assert f"{data['heard_text']} {data['unspoken_tail']}" == REPLY
    assert data["heard_from"] == "word_timings"


async def test_tail_includes_text_the_tts_never_got() -> None:
    keeper = ConversationKeeper()
    agent = _StreamingAgent(REPLY)
    keeper.wrap_agent(agent)
    await _drain(agent, llm.ChatContext.empty())
    # only the first sentence reached the TTS (and was timed) before the stop
    first = "The headphones cost one hundred dollars."
    spoken = [TimedText(w + " ", i * 0.3, None) for i, w in enumerate(first.split())]
    keeper.on_playback(PlaybackRecord(0.35, True, 1.8, spoken))
    msg = _message("The")
    keeper._on_item_added(SimpleNamespace(item=msg))
    assert msg.text_content == "The headphones"
    assert msg.extra[EXTRA_KEY]["unspoken_tail"] == (
        "cost one hundred dollars. Shipping is free until Sunday."
    )


async def test_the_right_generation_is_tagged_when_another_already_started() -> None:
    keeper = ConversationKeeper()
    agent = _StreamingAgent(REPLY)
    keeper.wrap_agent(agent)
    await _drain(agent, llm.ChatContext.empty())
    agent.reply = "Sure, what would you like to know?"  # a preemptive next reply
    await _drain(agent, llm.ChatContext.empty())
    keeper.on_playback(_playback(0.35))
    msg = _message("The")
    keeper._on_item_added(SimpleNamespace(item=msg))
    assert msg.extra[EXTRA_KEY]["full_text"].strip() == REPLY


async def test_complete_messages_are_left_alone() -> None:
    keeper = ConversationKeeper()
    agent = _StreamingAgent(REPLY)
    keeper.wrap_agent(agent)
    await _drain(agent, llm.ChatContext.empty())
    msg = llm.ChatMessage(role="assistant", content=[REPLY])
    keeper._on_item_added(SimpleNamespace(item=msg))
    assert msg.text_content == REPLY and EXTRA_KEY not in msg.extra


async def test_next_llm_call_sees_the_note_and_history_does_not_keep_it() -> None:
    keeper = ConversationKeeper(note_template="CUT OFF. Unsaid: {tail}")
    agent, msg = await _cut_off_after_the(keeper)
    history = _history(msg, "sorry, what was the price again?")
    agent.reply = "One hundred dollars."
    await _drain(agent, history)
    seen = agent.seen[-1]
    roles = [i.role for i in seen.items]
    assert roles == ["assistant", "system", "user"]
    assert seen.items[1].text_content == (
        "CUT OFF. Unsaid: cost one hundred dollars. Shipping is free until Sunday."
    )
    assert [i.role for i in history.items] == ["assistant", "user"]  # stored history untouched


async def test_note_can_be_turned_off() -> None:
    keeper = ConversationKeeper(note_template=None)
    agent, msg = await _cut_off_after_the(keeper)
    history = _history(msg, "what?")
    await _drain(agent, history)
    assert [i.role for i in agent.seen[-1].items] == ["assistant", "user"]
    assert EXTRA_KEY in msg.extra  # the tail is kept either way


async def test_cancelling_the_wrapper_cancels_the_inner_generation() -> None:
    keeper = ConversationKeeper()
    agent = _StreamingAgent(REPLY, token_delay_s=0.01)
    keeper.wrap_agent(agent)
    partial = await _drain(agent, llm.ChatContext.empty(), n=3)
    assert partial == "The headphones cost "
    assert agent.closed  # the inner stream was closed, not left running
    assert keeper._generations[-1].text == partial

    agent2 = _StreamingAgent(REPLY, token_delay_s=0.05)
    keeper.wrap_agent(agent2)

    async def consume() -> None:
        await _drain(agent2, llm.ChatContext.empty())

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.12)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert agent2.closed
