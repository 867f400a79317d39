"""Playground view: the state mapping, the payloads, and the publisher against a stand-in."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from fakes import FakeLocalParticipant

from livekit_bargein import BargeIn, Observation
from livekit_bargein.decision import Action, ControllerState, Decision
from livekit_bargein.engine import BargeInStats
from livekit_bargein.playground import (
    ATTR_INTERRUPTS,
    ATTR_LAST_TIME_TO_YIELD_MS,
    ATTR_PROFILE,
    ATTR_RESUMES,
    ATTR_SOFT_YIELDS,
    ATTR_STATE,
    DECISIONS_TOPIC,
    PlaygroundPublisher,
    attributes_for,
    changed,
    decision_payload,
    view_state,
)

_WINDOW_MS = 32.0


class Feeder:
    """Synthetic windows into a BargeIn, on the engine's clock."""

    def __init__(self, bargein: BargeIn) -> None:
        self.bargein = bargein
        self.t_ms = 0.0

    def windows(self, n: int, *, speech_prob: float, level_db: float = -20.0) -> None:
        for _ in range(n):
            self.t_ms += _WINDOW_MS
            self.bargein.on_observation(
                Observation(t_ms=self.t_ms, window_ms=_WINDOW_MS, speech_prob=speech_prob,
                            level_db=level_db, agent_audible=False)
            )  # fmt: skip

    def quiet(self, n: int) -> None:
        self.windows(n, speech_prob=0.01, level_db=-70.0)

    def reply(self, active: bool) -> None:
        self.bargein.controller.set_reply_active(active, t_ms=self.t_ms)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# -- pure part -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "agent_speaking", "expected"),
    [
        (ControllerState.LISTENING, None, "listening"),
        (ControllerState.LISTENING, True, "listening"),  # a reply the plugin does not guard
        (ControllerState.SPEAKING, None, "speaking"),
        (ControllerState.SPEAKING, True, "speaking"),
        (ControllerState.SPEAKING, False, "listening"),  # reply created, audio not playing yet
        (ControllerState.SOFT_YIELD, True, "soft-yield"),
        (ControllerState.SOFT_YIELD, False, "soft-yield"),
        (ControllerState.INTERRUPTED, False, "interrupted"),
    ],
)
def test_view_state(state: ControllerState, agent_speaking: bool | None, expected: str) -> None:
    assert view_state(state, agent_speaking=agent_speaking) == expected


def test_attributes_are_strings_and_time_to_yield_empty_until_measured() -> None:
    stats = BargeInStats()
    attrs = attributes_for("listening", stats=stats, profile="telephony")
    assert attrs == {
        ATTR_STATE: "listening",
        ATTR_PROFILE: "telephony",
        ATTR_LAST_TIME_TO_YIELD_MS: "",
        ATTR_SOFT_YIELDS: "0",
        ATTR_RESUMES: "0",
        ATTR_INTERRUPTS: "0",
    }
    stats = BargeInStats(soft_yields=3, resumes=1, interrupts=2, last_time_to_yield_ms=64.4)
    attrs = attributes_for("interrupted", stats=stats, profile="headset")
    assert attrs[ATTR_LAST_TIME_TO_YIELD_MS] == "64"
    assert (attrs[ATTR_SOFT_YIELDS], attrs[ATTR_RESUMES], attrs[ATTR_INTERRUPTS]) == ("3", "1", "2")
    assert all(isinstance(v, str) for v in attrs.values())


def test_changed_only_lists_differences() -> None:
    assert changed({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == {"b": "3", "c": "4"}
    assert changed({"a": "1"}, {"a": "1"}) == {}


def test_transcript_decision_payload_is_strict_json() -> None:
    # transcript-driven decisions carry no window threshold (NaN): it must become null
    d = Decision(
        t_ms=1234.56, action=Action.INTERRUPT, reason="words: 'wait'",
        state=ControllerState.INTERRUPTED, speaking=True, speech_started=False,
        speech_ended=False, threshold=float("nan"), speech_ms=320.0, silence_ms=0.0,
    )  # fmt: skip
    raw = decision_payload(
        d, state="interrupted", stats=BargeInStats(interrupts=1), profile="speakerphone",
        wall_time_ms=1.7e12,
    )  # fmt: skip
    msg = json.loads(raw.decode("utf-8"), parse_constant=pytest.fail)
    assert msg["action"] == "interrupt" and msg["state"] == "interrupted"
    assert msg["threshold"] is None and msg["time_to_yield_ms"] is None
    assert msg["t_ms"] == pytest.approx(1234.6) and msg["interrupts"] == 1
    assert msg["v"] == 1 and msg["type"] == "decision"


# -- the publisher --------------------------------------------------------------------------------


async def test_publishes_yield_resume_and_state_changes() -> None:
    bargein = BargeIn(profile="speakerphone")
    lp = FakeLocalParticipant()
    pub = PlaygroundPublisher(bargein, lp, min_interval_s=0.0)
    await _settle()
    # the initial state goes out in full
    assert lp.attribute_calls[0][ATTR_STATE] == "listening"
    assert lp.attribute_calls[0][ATTR_PROFILE] == "speakerphone"

    feed = Feeder(bargein)
    feed.quiet(20)
    feed.reply(True)
    feed.quiet(1)  # the state change is seen on the next window
    await _settle()
    assert lp.attributes[ATTR_STATE] == "speaking"
    n_calls = len(lp.attribute_calls)
    feed.quiet(10)  # nothing changes: nothing is sent
    await _settle()
    assert len(lp.attribute_calls) == n_calls

    feed.windows(1, speech_prob=0.99)  # one 32 ms window above threshold: onset, soft yield
    await _settle()
    assert lp.attributes[ATTR_STATE] == "soft-yield"
    assert lp.attributes[ATTR_SOFT_YIELDS] == "1"
    assert lp.attributes[ATTR_LAST_TIME_TO_YIELD_MS] == "32"
    feed.quiet(20)  # 450 ms of quiet without words: resume
    await _settle()
    assert lp.attributes[ATTR_STATE] == "speaking"
    assert lp.attributes[ATTR_RESUMES] == "1"

    msgs = lp.messages()
    assert [m["action"] for m in msgs] == ["soft_yield", "resume"]
    assert all(reliable and topic == DECISIONS_TOPIC for _, reliable, topic in lp.data_calls)
    assert msgs[0]["state"] == "soft-yield" and msgs[0]["time_to_yield_ms"] == pytest.approx(32)
    assert msgs[1]["state"] == "speaking" and msgs[1]["resumes"] == 1
    assert msgs[0]["t_ms"] < msgs[1]["t_ms"]
    await pub.aclose()


async def test_interrupt_by_words_and_reply_end() -> None:
    bargein = BargeIn()
    lp = FakeLocalParticipant()
    pub = PlaygroundPublisher(bargein, lp, min_interval_s=0.0)
    feed = Feeder(bargein)
    feed.quiet(20)
    feed.reply(True)
    feed.windows(1, speech_prob=0.99)
    # the session's transcript event confirms it (no session attached: interrupt() is a no-op)
    bargein._on_transcribed(SimpleNamespace(transcript="wait, stop", is_final=False))
    assert bargein.controller.state is ControllerState.INTERRUPTED
    feed.windows(1, speech_prob=0.99)
    await _settle()
    assert lp.attributes[ATTR_STATE] == "interrupted"
    assert lp.attributes[ATTR_INTERRUPTS] == "1"
    assert [m["action"] for m in lp.messages()] == ["soft_yield", "interrupt"]
    assert lp.messages()[1]["reason"].startswith("words:")

    feed.reply(False)  # the interrupted reply is done
    feed.quiet(1)
    await _settle()
    assert lp.attributes[ATTR_STATE] == "listening"
    await pub.aclose()


async def test_attribute_updates_are_throttled_and_coalesced() -> None:
    bargein = BargeIn()
    lp = FakeLocalParticipant()
    pub = PlaygroundPublisher(bargein, lp, min_interval_s=0.2)
    await _settle()
    feed = Feeder(bargein)
    feed.quiet(20)
    # within the interval: reply starts, caller barges in, agent resumes -> at most one update due
    feed.reply(True)
    feed.quiet(1)
    feed.windows(1, speech_prob=0.99)
    feed.quiet(20)
    await _settle()
    assert len(lp.attribute_calls) == 1, "nothing sent inside the interval after the first update"
    assert [m["action"] for m in lp.messages()] == ["soft_yield", "resume"], "decisions not held"
    await asyncio.sleep(0.3)  # the scheduled flush (loop time) sends the latest values at once
    await _settle()
    assert len(lp.attribute_calls) == 2
    last = lp.attribute_calls[-1]
    assert last[ATTR_STATE] == "speaking"  # the soft yield in between was coalesced away
    assert last[ATTR_SOFT_YIELDS] == "1" and last[ATTR_RESUMES] == "1"
    assert ATTR_PROFILE not in last, "only changed attributes are sent"
    await pub.aclose()


async def test_agent_state_gates_speaking() -> None:
    bargein = BargeIn()
    lp = FakeLocalParticipant()
    session = _FakeSession()
    pub = PlaygroundPublisher(bargein, lp, session=session, min_interval_s=0.0)  # type: ignore[arg-type]
    feed = Feeder(bargein)
    feed.reply(True)
    feed.quiet(1)
    await _settle()
    assert lp.attributes[ATTR_STATE] == "listening", "the LLM is thinking, nothing plays"
    session.emit("agent_state_changed", SimpleNamespace(old_state="thinking", new_state="speaking"))
    await _settle()
    assert lp.attributes[ATTR_STATE] == "speaking"
    await pub.aclose()
    assert session.handlers == {"agent_state_changed": []}, "aclose unsubscribes"


async def test_failures_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    bargein = BargeIn()
    lp = FakeLocalParticipant(fail_attributes=1)

    async def broken_publish(*_a: Any, **_k: Any) -> None:
        raise ConnectionError("room closed")

    lp.publish_data = broken_publish  # type: ignore[method-assign]
    pub = PlaygroundPublisher(bargein, lp, min_interval_s=0.0)
    await _settle()
    assert lp.attributes == {}  # the first update failed
    feed = Feeder(bargein)
    feed.quiet(20)
    feed.reply(True)
    d_count = len(bargein.decisions)
    feed.windows(1, speech_prob=0.99)  # a decision whose publication fails
    await _settle()
    assert len(bargein.decisions) == d_count + 1, "the engine went on"
    # what failed is sent again with the next change
    assert lp.attributes[ATTR_PROFILE] == "speakerphone"
    assert lp.attributes[ATTR_STATE] == "soft-yield"
    assert "set_attributes failed" in caplog.text and "publish_data failed" in caplog.text
    await pub.aclose()


async def test_aclose_sends_final_state_and_stops_listening() -> None:
    bargein = BargeIn()
    lp = FakeLocalParticipant()
    pub = PlaygroundPublisher(bargein, lp, min_interval_s=10.0)
    await _settle()
    feed = Feeder(bargein)
    feed.reply(True)
    feed.quiet(1)  # within the interval: a flush is scheduled
    await pub.aclose()
    assert lp.attributes[ATTR_STATE] == "speaking", "pending changes are flushed on close"
    n = len(lp.attribute_calls)
    feed.windows(1, speech_prob=0.99)
    await _settle()
    assert len(lp.attribute_calls) == n and lp.data_calls == []


def test_rejects_negative_interval() -> None:
    async def make() -> None:
        PlaygroundPublisher(BargeIn(), FakeLocalParticipant(), min_interval_s=-1.0)

    with pytest.raises(ValueError, match="min_interval_s"):
        asyncio.run(make())


class _FakeSession:
    """Just the event subscription of ``AgentSession``."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[Any]] = {}

    def on(self, event: str, cb: Any) -> None:
        self.handlers.setdefault(event, []).append(cb)

    def off(self, event: str, cb: Any) -> None:
        self.handlers[event].remove(cb)

    def emit(self, event: str, ev: Any) -> None:
        for cb in list(self.handlers.get(event, [])):
            cb(ev)
