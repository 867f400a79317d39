"""The barge-in-aware turn detector's decisions."""

from __future__ import annotations

from livekit.agents import llm

from livekit_bargein.context import EXTRA_KEY
from livekit_bargein.options import BargeInOptions
from livekit_bargein.turn_detector import (
    DEFAULT_THRESHOLD,
    UNLIKELY,
    BargeInTurnDetector,
    end_of_turn_probability,
)

BACKCHANNELS = BargeInOptions().backchannel_words


def _p(text: str, *, after_interrupt: bool = False, asked: bool = False, inner=None) -> float:  # type: ignore[no-untyped-def]
    return end_of_turn_probability(
        text,
        after_interrupt=after_interrupt,
        agent_asked=asked,
        backchannel_words=BACKCHANNELS,
        inner_probability=inner,
    )


def test_backchannel_never_ends_a_turn_unless_it_answers_a_question() -> None:
    assert _p("uh-huh") == UNLIKELY
    assert _p("okay yeah") == UNLIKELY
    assert _p("yeah", asked=True) == 1.0  # "Shall I book it?" "Yeah."
    assert _p("okay book it") == 1.0


def test_after_an_interruption_a_fragment_gets_time() -> None:
    assert _p("wait", after_interrupt=True) == UNLIKELY
    assert _p("wait actually", after_interrupt=True) == UNLIKELY
    assert _p("sorry what was the price again", after_interrupt=True) == 1.0
    assert _p("can we make it thursday and", after_interrupt=True) == UNLIKELY  # trailing "and"
    assert _p("wait", after_interrupt=False) == 1.0  # not after an interruption: no extra wait


def test_inner_model_decides_otherwise() -> None:
    assert _p("sorry what was the price again", inner=0.3) == 0.3
    assert _p("uh-huh", inner=0.9) == UNLIKELY  # the barge-in context overrides it
    assert _p("", inner=0.7) == 0.7


class _Inner:
    def __init__(self, p: float) -> None:
        self.p = p
        self.calls = 0

    @property
    def model(self) -> str:
        return "inner"

    async def unlikely_threshold(self, language: object) -> float | None:
        return 0.2

    async def supports_language(self, language: object) -> bool:
        return False

    async def predict_end_of_turn(
        self, chat_ctx: llm.ChatContext, *, timeout: float | None = None
    ) -> float:
        self.calls += 1
        return self.p


def _ctx(assistant: llm.ChatMessage, *user: str) -> llm.ChatContext:
    ctx = llm.ChatContext.empty()
    ctx.items.append(assistant)
    for u in user:
        ctx.add_message(role="user", content=u)
    return ctx


async def test_detector_reads_the_interruption_from_the_chat_context() -> None:
    cut = llm.ChatMessage(
        role="assistant",
        content=["The headphones are"],
        interrupted=True,
        extra={EXTRA_KEY: {"unspoken_tail": "one hundred dollars."}},
    )
    whole = llm.ChatMessage(role="assistant", content=["Anything else?"])
    d = BargeInTurnDetector()
    assert await d.predict_end_of_turn(_ctx(cut, "wait")) == UNLIKELY
    assert await d.predict_end_of_turn(_ctx(cut, "wait", "can we make it thursday please")) == 1.0
    assert await d.predict_end_of_turn(_ctx(whole, "yeah")) == 1.0  # answers the question
    assert await d.predict_end_of_turn(_ctx(whole, "hmm")) == 1.0  # not a fragment rule here
    assert await d.unlikely_threshold("en") == DEFAULT_THRESHOLD
    assert await d.supports_language("en")

    inner = _Inner(0.4)
    wrapped = BargeInTurnDetector(inner=inner)
    assert await wrapped.predict_end_of_turn(_ctx(whole, "and then we go")) == 0.4
    assert inner.calls == 1
    assert await wrapped.unlikely_threshold("en") == 0.2
    assert not await wrapped.supports_language("xx")
    assert wrapped.model == "bargein+inner"
