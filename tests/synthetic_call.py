"""A scripted call through a real ``BargeIn`` without audio: windows and transcripts only.

Used by the debug-trace, trace-view and browser tests. The session is a stand-in with just what
``BargeIn.attach`` and ``DecisionTrace.attach`` touch.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from livekit import rtc

from livekit_bargein import BargeIn, Observation

WINDOW_MS = 32.0


class FakeSession(rtc.EventEmitter[str]):
    """Enough of an ``AgentSession`` for ``attach``: events, options, no audio to wrap."""

    def __init__(self) -> None:
        super().__init__()
        self.options = SimpleNamespace(interruption={})
        self.output = SimpleNamespace(audio=None)
        self.input = SimpleNamespace(audio=None)
        self.current_speech = None
        self.interrupt_calls = 0

    @property
    def current_agent(self) -> Any:
        raise RuntimeError("FakeSession runs no agent")  # as AgentSession before start()

    def transcript(self, text: str, *, final: bool) -> None:
        self.emit("user_input_transcribed", SimpleNamespace(transcript=text, is_final=final))

    def interrupt(self, *, force: bool = False) -> Any:
        # no event loop here to return a future on: the engine logs the error and carries on
        self.interrupt_calls += 1
        raise RuntimeError("FakeSession has no reply to interrupt")

    def clear_user_turn(self) -> None:
        pass


class ScriptedCall:
    """Drives ``bargein`` window by window on its own clock (``t_ms``)."""

    def __init__(self, bargein: BargeIn, session: FakeSession) -> None:
        self.bargein = bargein
        self.session = session
        self.t_ms = 0.0

    def windows(self, n: int, *, prob: float, level_db: float, agent: bool) -> None:
        for _ in range(n):
            self.t_ms += WINDOW_MS
            self.bargein.on_observation(
                Observation(
                    t_ms=self.t_ms,
                    window_ms=WINDOW_MS,
                    speech_prob=prob,
                    level_db=level_db,
                    agent_audible=agent,
                    residual_echo_db=-60.0 if agent else None,
                    raw_level_db=level_db + 3.0,
                )
            )


def run_call(bargein: BargeIn, session: FakeSession) -> ScriptedCall:
    """~6.4 s: quiet, a reply starts, a backchannel (yield, resume), then a real interruption."""
    bargein.attach(session)
    call = ScriptedCall(bargein, session)
    call.windows(30, prob=0.01, level_db=-70.0, agent=False)
    bargein.controller.set_reply_active(True, t_ms=call.t_ms)
    call.windows(30, prob=0.02, level_db=-65.0, agent=True)
    call.windows(6, prob=0.99, level_db=-20.0, agent=True)  # "okay": soft yield
    session.transcript("okay", final=True)  # still speaking: no resume yet
    call.windows(30, prob=0.01, level_db=-65.0, agent=True)  # quiet: resume
    call.windows(4, prob=0.99, level_db=-20.0, agent=True)  # "wait": soft yield
    session.transcript("wait stop", final=False)  # confirming words: interrupt
    call.windows(100, prob=0.5, level_db=-30.0, agent=False)
    return call
