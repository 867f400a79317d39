"""LiveKit worker with the barge-in plugin: `python agents/voice_agent.py dev | start | console`.

OpenAI STT/LLM/TTS, the plugin's Silero VAD on the echo-cancelled microphone, LiveKit noise
cancellation on LiveKit Cloud, and the playground view (barge-in state as participant attributes,
decisions on the ``bargein.decisions`` data topic).

Environment (see .env.example; a ``.env`` file in the working directory is read too):
    LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET   the LiveKit project (not for ``console``)
    OPENAI_API_KEY                                     STT, LLM and TTS
    BARGEIN_PROFILE              speakerphone | telephony | headset | noisy; default: from the
                                 participant (SIP callers get ``telephony``, others speakerphone)
    BARGEIN_NOISE_CANCELLATION   auto (default) | on | off; auto: on for *.livekit.cloud URLs
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from urllib.parse import urlparse

from livekit import rtc
from livekit.agents import (
    Agent,
    AgentSession,
    JobContext,
    JobProcess,
    WorkerOptions,
    cli,
)
from livekit.agents import llm as lk_llm
from livekit.agents import stt as lk_stt
from livekit.agents import tts as lk_tts
from livekit.agents.voice import room_io
from livekit.plugins import openai

from livekit_bargein import PROFILES, BargeIn, BargeInVAD
from livekit_bargein.log import logger
from livekit_bargein.playground import PlaygroundPublisher

try:  # Krisp models inside the wheel; they only authorize on LiveKit Cloud rooms
    from livekit.plugins import noise_cancellation as _nc
except Exception:  # a platform without the native filter: run without it
    _nc = None

ROOM_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
OPENAI_ENV = ("OPENAI_API_KEY",)
REQUIRED_ENV = ROOM_ENV + OPENAI_ENV
PROFILE_ENV = "BARGEIN_PROFILE"
NOISE_CANCELLATION_ENV = "BARGEIN_NOISE_CANCELLATION"
NOISE_CANCELLATION_MODES = ("auto", "on", "off")
LIVEKIT_CLOUD_SUFFIX = ".livekit.cloud"

INSTRUCTIONS = "You are a concise, friendly voice assistant. Keep answers short and spoken."
GREETING = "Greet the user and offer your help."


# -- configuration ---------------------------------------------------------------------------------


def load_env_file(path: Path, env: MutableMapping[str, str] = os.environ) -> None:
    """``KEY=VALUE`` lines of ``path`` into ``env``; variables already set win."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip().removeprefix("export ").strip(), value.strip().strip("'\"")
        if key and value and key not in env:
            env[key] = value


def required_env(command: str | None) -> tuple[str, ...]:
    """What the CLI subcommand needs: ``console`` runs without a LiveKit project."""
    if command in ("dev", "start", "connect"):
        return REQUIRED_ENV
    if command == "console":
        return OPENAI_ENV
    return ()  # download-files, --help: nothing


def check_env(command: str | None = "start", env: Mapping[str, str] = os.environ) -> None:
    """Exit with a message naming every missing or invalid variable."""
    problems = [f"{k} is not set" for k in required_env(command) if not env.get(k)]
    override = env.get(PROFILE_ENV)
    if override and override not in PROFILES:
        problems.append(f"{PROFILE_ENV}={override!r} is not one of {', '.join(PROFILES)}")
    mode = env.get(NOISE_CANCELLATION_ENV, "auto") or "auto"
    if mode not in NOISE_CANCELLATION_MODES:
        problems.append(
            f"{NOISE_CANCELLATION_ENV}={mode!r} is not one of {', '.join(NOISE_CANCELLATION_MODES)}"
        )
    if problems:
        raise SystemExit("; ".join(problems) + " (see .env.example)")


def is_sip(participant: rtc.Participant | None) -> bool:
    return participant is not None and participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP


def profile_for(participant: rtc.Participant | None, env: Mapping[str, str] = os.environ) -> str:
    """``BARGEIN_PROFILE`` if set, else ``telephony`` for SIP callers and speakerphone otherwise."""
    override = env.get(PROFILE_ENV)
    if override:
        return override
    return "telephony" if is_sip(participant) else "speakerphone"


def noise_cancellation_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """``BARGEIN_NOISE_CANCELLATION``: on, off, or auto (on when LIVEKIT_URL is LiveKit Cloud)."""
    mode = env.get(NOISE_CANCELLATION_ENV, "auto") or "auto"
    if mode == "on":
        return True
    if mode == "off":
        return False
    host = urlparse(env.get("LIVEKIT_URL", "")).hostname or ""
    return host.endswith(LIVEKIT_CLOUD_SUFFIX)


def select_noise_cancellation(
    params: room_io.NoiseCancellationParams,
) -> rtc.NoiseCancellationOptions | None:
    """BVCTelephony for SIP callers (narrowband, line noise), BVC for WebRTC participants."""
    if _nc is None:
        return None
    return _nc.BVCTelephony() if is_sip(params.participant) else _nc.BVC()


def room_options(
    *, noise_cancellation: bool, participant_identity: str | None
) -> room_io.RoomOptions:
    """RoomIO options for the session.

    Noise cancellation runs inside the inbound ``rtc.AudioStream``, so before the plugin's echo
    canceller: it is the only place the Krisp filter can run. BVC suppresses voices other than the
    caller's, which includes part of the agent's own echo, and it does so non-linearly; AEC3 then
    adapts to a distorted echo path. The plugin's echo guards that matter most (envelope likeness
    to the played audio, cleaned-vs-raw level) do not rely on a linear path, so NC stays on for
    Cloud rooms. RoomIO's AGC is turned off: a gain that moves under the canceller is a moving echo
    path, and the plugin's own APM runs without AGC for the same reason.
    """
    audio_input = room_io.AudioInputOptions(
        noise_cancellation=select_noise_cancellation if noise_cancellation else None,
        auto_gain_control=False,
    )
    if participant_identity is None:
        return room_io.RoomOptions(audio_input=audio_input)
    return room_io.RoomOptions(audio_input=audio_input, participant_identity=participant_identity)


# -- the session -----------------------------------------------------------------------------------


def build_session(
    bargein: BargeIn,
    *,
    stt: lk_stt.STT | None = None,
    llm: lk_llm.LLM | None = None,
    tts: lk_tts.TTS | None = None,
) -> AgentSession:
    """The worker's session factory, plugin attached (tests drive it offline).

    Without ``stt``/``llm``/``tts``, OpenAI's are used (they read ``OPENAI_API_KEY``); the STT
    streams interim words (its realtime API), which confirm a barge-in ~350 ms in. The plugin is
    attached before ``session.start``: the audio RoomIO creates during start is wrapped when the
    first reply is created, so even a greeting from ``on_enter`` has its echo reference.
    """
    session = AgentSession(
        vad=bargein.vad,
        stt=stt if stt is not None else openai.STT(use_realtime=True),
        llm=llm if llm is not None else openai.LLM(model="gpt-4o-mini"),
        tts=tts if tts is not None else openai.TTS(),
        turn_handling=bargein.turn_handling(),
        aec_warmup_duration=None,  # echo is the plugin's business: no 3 s deaf window
    )
    bargein.attach(session)
    return session


def start_playground_view(
    session: AgentSession,
    bargein: BargeIn,
    local_participant: rtc.LocalParticipant | None,
) -> PlaygroundPublisher | None:
    """Publish the barge-in state and decisions through the agent's participant (None: no room)."""
    if local_participant is None:
        return None
    return PlaygroundPublisher(bargein, local_participant, session=session)


class VoiceAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions=INSTRUCTIONS)

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions=GREETING)


def prewarm(proc: JobProcess) -> None:
    BargeInVAD(BargeIn()).prewarm()  # loads the shared Silero ONNX session once per process


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    participant = await ctx.wait_for_participant()
    console = ctx.is_fake_job()  # `console`: local audio, no room to publish to or filter
    profile = profile_for(participant)
    nc = noise_cancellation_enabled() and not console and _nc is not None
    logger.info(
        "barge-in worker session",
        extra={
            "participant": participant.identity,
            "sip": is_sip(participant),
            "profile": profile,
            "noise_cancellation": (
                ("BVCTelephony" if is_sip(participant) else "BVC") if nc else "off"
            ),
        },
    )
    if _nc is None and noise_cancellation_enabled() and not console:
        logger.warning("noise cancellation requested but livekit-plugins-noise-cancellation failed")
    bargein = BargeIn(profile=profile)
    session = build_session(bargein)
    # before start: the greeting's decisions are published too
    publisher = start_playground_view(
        session, bargein, None if console else ctx.room.local_participant
    )
    if publisher is not None:
        ctx.add_shutdown_callback(publisher.aclose)
    await session.start(
        VoiceAgent(),
        room=ctx.room,
        room_options=room_options(noise_cancellation=nc, participant_identity=participant.identity),
    )


if __name__ == "__main__":
    load_env_file(Path.cwd() / ".env")
    check_env(sys.argv[1] if len(sys.argv) > 1 else None)
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm))
