"""The barge-in engine's configurations for the evaluator (``bargein`` and one per profile).

Kept out of ``livekit_bargein.eval`` so the evaluator does not depend on the engine's internals:
this is the whole of the wiring, the same few lines a user writes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.voice import io

from .debug_trace import DecisionTrace
from .engine import BargeIn
from .eval.configs import ConfigSetup, EvalConfig, HarnessContext, register
from .options import PROFILES


class _BargeInSetup(ConfigSetup):
    def __init__(self, ctx: HarnessContext, profile: str, **overrides: Any) -> None:
        self.bargein = BargeIn(profile=profile)
        if overrides:
            self.bargein.update_options(**overrides)
        path = ctx.decision_trace_path
        self.decision_trace = (
            DecisionTrace(
                self.bargein,
                path,
                meta={"scenario_id": ctx.scenario_id, "config": ctx.config_name},
            )
            if path is not None
            else None
        )

    def session_kwargs(self) -> dict[str, Any]:
        return {"vad": self.bargein.vad, "turn_handling": self.bargein.turn_handling()}

    def wrap_output(self, out: io.AudioOutput) -> io.AudioOutput:
        return self.bargein.wrap_output(out)

    def wrap_input(self, mic: io.AudioInput) -> io.AudioInput:
        return self.bargein.wrap_input(mic)

    def before_session_start(self, session: AgentSession) -> None:
        # as the README says: before start, so the first reply's unsaid text is kept too
        self.bargein.attach(session)
        if self.decision_trace is not None:
            self.decision_trace.attach(session)  # transcript timing and word counts, no text

    def trace_events(self) -> list[dict[str, Any]]:
        # the engine's clock counts microphone samples at 16 kHz from the session's start,
        # which is the harness' sim clock
        return [
            {"sample": int(d.t_ms * 16), "kind": f"bargein_{d.action.value}", "reason": d.reason}
            for d in self.bargein.decisions
        ]

    async def aclose(self) -> None:
        if self.decision_trace is not None:
            # joins the writer thread: off the event loop, which still paces other scenarios
            await asyncio.get_running_loop().run_in_executor(None, self.decision_trace.close)


register(
    EvalConfig(
        name="bargein",
        description="livekit-bargein engine, speakerphone profile (the default)",
        make=lambda ctx: _BargeInSetup(ctx, "speakerphone"),
    )
)
for _name in PROFILES:
    register(
        EvalConfig(
            name=f"bargein-{_name}",
            description=f"livekit-bargein engine, {_name} profile",
            make=lambda ctx, _p=_name: _BargeInSetup(ctx, _p),
        )
    )


def parse_variant(name: str) -> EvalConfig | None:
    """``bargein[-PROFILE]@KNOB=VALUE[+KNOB=VALUE]``: a one-off variant, e.g. for a knob sweep."""
    base, sep, spec = name.partition("@")
    if not sep:
        return None
    profile = "speakerphone" if base == "bargein" else base.removeprefix("bargein-")
    if base != "bargein" and (not base.startswith("bargein-") or profile not in PROFILES):
        raise KeyError(f"unknown configuration '{name}': variants extend bargein[-PROFILE]")
    overrides: dict[str, Any] = {}
    for item in spec.split("+"):
        key, eq, value = item.partition("=")
        if not eq:
            raise KeyError(f"bad variant '{name}': expected KNOB=VALUE, got '{item}'")
        if value.lower() in ("true", "false"):
            overrides[key] = value.lower() == "true"
            continue
        if value.lower() == "none":  # a knob that None turns off
            overrides[key] = None
            continue
        try:
            overrides[key] = float(value)
        except ValueError:
            raise KeyError(
                f"bad variant '{name}': {key} must be a number, true/false or none"
            ) from None
    try:  # validate now, not in every scenario
        PROFILES[profile].updated(**overrides)
    except (TypeError, ValueError) as e:
        raise KeyError(f"bad variant '{name}': {e}") from None
    return EvalConfig(
        name=name,
        description=f"bargein {profile} with {spec}",
        make=lambda ctx: _BargeInSetup(ctx, profile, **overrides),
    )
