"""LiveKit worker with the barge-in plugin: `python agents/voice_agent.py dev | start | console`.

Environment: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, OPENAI_API_KEY (see .env.example);
BARGEIN_PROFILE (speakerphone, telephony, headset, noisy) overrides the profile chosen from the
participant (SIP callers get `telephony`).
"""

from __future__ import annotations

import os

from livekit import rtc
from livekit.agents import Agent, AgentSession, JobContext, JobProcess, WorkerOptions, cli
from livekit.plugins import openai

from livekit_bargein import BargeIn, BargeInVAD

REQUIRED_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "OPENAI_API_KEY")


def check_env() -> None:
    missing = [k for k in REQUIRED_ENV if not os.environ.get(k)]
    if missing:
        raise SystemExit(f"missing environment variable(s): {', '.join(missing)} (see .env.example)")


def profile_for(participant: rtc.RemoteParticipant | None) -> str:
    override = os.environ.get("BARGEIN_PROFILE")
    if override:
        return override
    if participant is not None and participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
        return "telephony"
    return "speakerphone"


def build_session(bargein: BargeIn) -> AgentSession:
    """The worker's session factory (the same one tests drive offline)."""
    return AgentSession(
        vad=bargein.vad,
        stt=openai.STT(),
        llm=openai.LLM(model="gpt-4o-mini"),
        tts=openai.TTS(),
        turn_handling=bargein.turn_handling(),
        aec_warmup_duration=None,
    )


def prewarm(proc: JobProcess) -> None:
    BargeInVAD(BargeIn()).prewarm()  # loads the shared Silero ONNX session once per process


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    participant = await ctx.wait_for_participant()
    bargein = BargeIn(profile=profile_for(participant))
    session = build_session(bargein)
    await session.start(Agent(instructions="You are a concise, friendly assistant."), room=ctx.room)
    bargein.attach(session)
    session.generate_reply(instructions="Greet the user and offer your help.")


if __name__ == "__main__":
    check_env()
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm))
