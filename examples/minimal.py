"""Minimal integration: a LiveKit worker whose agent yields to real barge-ins only.

    python examples/minimal.py dev      # needs LIVEKIT_URL/API_KEY/API_SECRET and OPENAI_API_KEY

Six lines differ from a stock LiveKit agent; they are marked with `# barge-in`.
"""

from __future__ import annotations

from livekit.agents import Agent, AgentSession, JobContext, WorkerOptions, cli
from livekit.plugins import openai

from livekit_bargein import BargeIn


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    bargein = BargeIn(profile="speakerphone")  # barge-in
    session = AgentSession(
        vad=bargein.vad,  # barge-in: Silero on the echo-cancelled mic, echo-aware thresholds
        stt=openai.STT(use_realtime=True),  # barge-in: interim words confirm a barge-in early
        llm=openai.LLM(model="gpt-4o-mini"),
        tts=openai.TTS(),
        turn_handling=bargein.turn_handling(),  # barge-in: the plugin owns interruptions
        aec_warmup_duration=None,  # barge-in: no 3 s deaf window, echo is handled
    )
    bargein.attach(session)  # barge-in: before start; wraps the session's audio once RoomIO made it
    await session.start(Agent(instructions="You are a concise, friendly assistant."), room=ctx.room)
    session.generate_reply(instructions="Greet the user and offer your help.")


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint))
