from __future__ import annotations

import asyncio

import pytest
from livekit.agents import llm

from livekit_bargein.eval.llm import ScriptedLLM, split_tokens

REPLY = "Sure, I can help with that. The weather tomorrow looks wonderful, sunny and warm."


def _ctx(text: str = "What's the weather?") -> llm.ChatContext:
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="user", content=text)
    return ctx


@pytest.mark.parametrize(
    "text", [REPLY, "  leading and trailing  ", "Okay.", "", "naïve café, 12:30!"]
)
def test_split_tokens_round_trip(text: str) -> None:
    tokens = split_tokens(text)
    assert "".join(tokens) == text
    assert all(tokens)


def test_split_tokens_are_word_pieces() -> None:
    tokens = split_tokens(REPLY)
    assert tokens[:4] == ["Sure", ",", " I", " can"]
    assert max(len(t) for t in tokens) <= 6
    assert 3.0 <= len(REPLY) / len(tokens) <= 5.0


async def test_stream_concatenates_to_reply_at_pace() -> None:
    model = ScriptedLLM(replies=[REPLY], ttft_ms=100, tokens_per_s=100)
    errors: list[object] = []
    metrics: list[object] = []
    model.on("error", errors.append)
    model.on("metrics_collected", metrics.append)

    resp = await model.chat(chat_ctx=_ctx()).collect()

    assert resp.text == REPLY
    assert resp.usage is not None and resp.usage.completion_tokens == len(split_tokens(REPLY))
    rec = model.records[0]
    assert rec.emitted_text == REPLY and rec.completed_at is not None and not rec.cancelled
    times = [t for t, _ in rec.token_log]
    # Lower bounds only: sleeps never end early, but a loaded machine may make them late.
    assert times[0] - rec.started_at >= 0.1 - 0.005
    assert times[-1] - rec.started_at >= 0.1 + (len(times) - 1) / 100 - 0.005
    assert not errors
    assert len(metrics) == 1


async def test_close_mid_stream_stops_emission() -> None:
    model = ScriptedLLM(replies=[REPLY], ttft_ms=20, tokens_per_s=50)
    loop = asyncio.get_running_loop()
    stream = model.chat(chat_ctx=_ctx())
    got: list[str] = []
    async for chunk in stream:
        assert chunk.delta is not None and chunk.delta.content
        got.append(chunk.delta.content)
        if len(got) == 3:
            break
    t_close = loop.time()
    await stream.aclose()
    await asyncio.sleep(0.15)  # several token intervals: nothing more may appear

    rec = model.records[0]
    assert rec.cancelled and rec.closed_at is not None and rec.closed_at >= t_close
    assert [tok for _, tok in rec.token_log] == got
    assert model.tokens_emitted_after(t_close) == 0
    assert model.tokens_emitted_after(rec.token_log[0][0]) == 2
    assert model.tokens_emitted_after(rec.started_at) == 3


async def test_cancelling_consumer_task_closes_stream() -> None:
    # The framework cancels the llm_node task, whose `async with` closes the stream.
    model = ScriptedLLM(replies=[REPLY], ttft_ms=0, tokens_per_s=50)

    async def consume() -> None:
        async with model.chat(chat_ctx=_ctx()) as stream:
            async for _ in stream:
                pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    n = len(model.records[0].token_log)
    await asyncio.sleep(0.1)
    assert 0 < n == len(model.records[0].token_log) < len(split_tokens(REPLY))
    assert model.records[0].cancelled


async def test_tokens_emitted_after_counts_per_call() -> None:
    model = ScriptedLLM(replies=["One two three.", "Four five."], ttft_ms=0, tokens_per_s=1000)
    await model.chat(chat_ctx=_ctx()).collect()
    t_between = asyncio.get_running_loop().time()
    await model.chat(chat_ctx=_ctx()).collect()
    assert model.tokens_emitted_after(t_between) == len(split_tokens("Four five."))
    assert model.tokens_emitted_after(0.0, call_index=0) == len(split_tokens("One two three."))


async def test_records_chat_ctx_copies_and_default_reply() -> None:
    model = ScriptedLLM(replies=["First."], ttft_ms=0, tokens_per_s=1000)
    ctx = _ctx("hello")
    first = await model.chat(chat_ctx=ctx).collect()
    ctx.add_message(role="assistant", content=first.text)
    ctx.add_message(role="user", content="and then?")
    second = await model.chat(chat_ctx=ctx).collect()

    assert (first.text, second.text) == ("First.", "Okay.")
    assert len(model.calls) == 2
    assert [m.text_content for m in model.calls[0].messages()] == ["hello"]
    assert [m.text_content for m in model.calls[1].messages()] == ["hello", "First.", "and then?"]


async def test_callable_replies_see_the_context() -> None:
    def reply(ctx: llm.ChatContext) -> str:
        return f"You said {len(ctx.messages())} things."

    model = ScriptedLLM(replies=reply, ttft_ms=0, tokens_per_s=1000)
    assert (await model.chat(chat_ctx=_ctx()).collect()).text == "You said 1 things."


async def test_tokens_sent_after_the_consumer_stopped_are_emitted_not_delivered() -> None:
    # LiveKit cancels its inference task (the reader) before it closes the stream: a token sent in
    # between sits in the stream, unread. The agent's reply is what it received.
    model = ScriptedLLM(replies=[REPLY], ttft_ms=0, tokens_per_s=200)
    stream = model.chat(chat_ctx=_ctx())
    got = [(await stream.__anext__()).delta.content for _ in range(3)]  # type: ignore[union-attr]
    await asyncio.sleep(0.03)  # the reader has stopped; the LLM sends on
    await stream.aclose()
    rec = model.records[0]
    assert rec.delivered_text == "".join(got)
    assert len(rec.token_log) > 3 and rec.emitted_text.startswith(rec.delivered_text)
    assert rec.emitted_text != rec.delivered_text
