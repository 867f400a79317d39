"""agents/voice_agent.py: configuration, noise cancellation choice, and one offline scenario through
the worker's own session factory (no LiveKit server: the evaluator's audio I/O and services)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeLocalParticipant
from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice import io
from livekit.plugins import noise_cancellation as nc
from livekit.plugins import openai

from livekit_bargein import BargeIn
from livekit_bargein.engine import BLOCK_MIN_WORDS
from livekit_bargein.eval.configs import ConfigSetup, EvalConfig, HarnessContext, register
from livekit_bargein.eval.harness import HarnessResources, run_scenario
from livekit_bargein.eval.manifest import load_manifest
from livekit_bargein.eval.metrics import score_scenario
from livekit_bargein.eval.piper_voice import PiperSpeaker
from livekit_bargein.playground import ATTR_INTERRUPTS, ATTR_PROFILE, ATTR_STATE

_PATH = Path(__file__).resolve().parents[1] / "agents" / "voice_agent.py"

AGENT_TEXT = (
    "Your order shipped yesterday and should arrive on Thursday. If you need to change the "
    "delivery address, I can help with that right now, or you can pick it up at the store."
)
USER_TEXT = "Wait, stop, I need to change the address."

SIP = SimpleNamespace(kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP, identity="sip_caller")
WEB = SimpleNamespace(kind=rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD, identity="web_user")


@pytest.fixture(scope="module")
def voice_agent() -> ModuleType:
    spec = importlib.util.spec_from_file_location("voice_agent", _PATH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_FULL_ENV = {
    "LIVEKIT_URL": "wss://demo.livekit.cloud",
    "LIVEKIT_API_KEY": "k",
    "LIVEKIT_API_SECRET": "s",
    "OPENAI_API_KEY": "sk",
}


# -- configuration ---------------------------------------------------------------------------------


def test_missing_key_is_named(voice_agent: ModuleType) -> None:
    env = {k: v for k, v in _FULL_ENV.items() if k != "OPENAI_API_KEY"}
    with pytest.raises(SystemExit, match="OPENAI_API_KEY is not set") as e:
        voice_agent.check_env("dev", env)
    assert "LIVEKIT" not in str(e.value), "only the missing key is named"
    env = {"OPENAI_API_KEY": "sk"}
    with pytest.raises(SystemExit, match="LIVEKIT_URL.*LIVEKIT_API_KEY.*LIVEKIT_API_SECRET"):
        voice_agent.check_env("start", env)
    voice_agent.check_env("dev", _FULL_ENV)


def test_console_needs_only_openai(voice_agent: ModuleType) -> None:
    voice_agent.check_env("console", {"OPENAI_API_KEY": "sk"})
    with pytest.raises(SystemExit, match="OPENAI_API_KEY"):
        voice_agent.check_env("console", {})
    voice_agent.check_env("download-files", {})


def test_bad_profile_and_mode_are_named(voice_agent: ModuleType) -> None:
    with pytest.raises(SystemExit, match="BARGEIN_PROFILE='loud'.*telephony"):
        voice_agent.check_env("dev", {**_FULL_ENV, "BARGEIN_PROFILE": "loud"})
    with pytest.raises(SystemExit, match="BARGEIN_NOISE_CANCELLATION='yes'"):
        voice_agent.check_env("dev", {**_FULL_ENV, "BARGEIN_NOISE_CANCELLATION": "yes"})


def test_profile_from_participant(voice_agent: ModuleType) -> None:
    assert voice_agent.profile_for(SIP, {}) == "telephony"
    assert voice_agent.profile_for(WEB, {}) == "speakerphone"
    assert voice_agent.profile_for(None, {}) == "speakerphone"
    assert voice_agent.profile_for(SIP, {"BARGEIN_PROFILE": "headset"}) == "headset"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LIVEKIT_URL": "wss://demo-abc123.livekit.cloud"}, True),
        ({"LIVEKIT_URL": "wss://livekit.example.com"}, False),  # self-hosted: BVC can't authorize
        ({"LIVEKIT_URL": "ws://localhost:7880"}, False),
        ({"LIVEKIT_URL": "wss://evil.livekit.cloud.example.com"}, False),
        ({}, False),
        ({"LIVEKIT_URL": "ws://localhost:7880", "BARGEIN_NOISE_CANCELLATION": "on"}, True),
        ({"LIVEKIT_URL": "wss://x.livekit.cloud", "BARGEIN_NOISE_CANCELLATION": "off"}, False),
        ({"LIVEKIT_URL": "wss://x.livekit.cloud", "BARGEIN_NOISE_CANCELLATION": "auto"}, True),
    ],
)
def test_noise_cancellation_mode(voice_agent: ModuleType, env: dict, expected: bool) -> None:
    assert voice_agent.noise_cancellation_enabled(env) is expected


def test_room_options_pick_bvc_per_participant(voice_agent: ModuleType) -> None:
    opts = voice_agent.room_options(noise_cancellation=True, participant_identity="sip_caller")
    audio = opts.get_audio_input_options()
    assert opts.participant_identity == "sip_caller"
    assert audio.auto_gain_control is False, "no moving gain in front of the echo canceller"
    select = audio.noise_cancellation
    track = object()
    assert select(SimpleNamespace(participant=SIP, track=track)) == nc.BVCTelephony()
    assert select(SimpleNamespace(participant=WEB, track=track)) == nc.BVC()
    assert nc.BVC() != nc.BVCTelephony()

    off = voice_agent.room_options(noise_cancellation=False, participant_identity=None)
    assert off.get_audio_input_options().noise_cancellation is None
    assert off.get_audio_input_options().auto_gain_control is False


def test_env_file_does_not_override(voice_agent: ModuleType, tmp_path: Path) -> None:
    f = tmp_path / ".env"
    f.write_text('# comment\nOPENAI_API_KEY=from-file\nexport BARGEIN_PROFILE="headset"\n'
                 "LIVEKIT_API_KEY=\nnot a line\n")  # fmt: skip
    env = {"OPENAI_API_KEY": "from-shell"}
    voice_agent.load_env_file(f, env)
    assert env == {"OPENAI_API_KEY": "from-shell", "BARGEIN_PROFILE": "headset"}
    voice_agent.load_env_file(tmp_path / "missing", env)  # no file: nothing happens


async def test_factory_defaults_to_openai_and_blocks_livekit_interruptions(
    voice_agent: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # constructing clients makes no request
    bargein = BargeIn(profile="telephony")
    session = voice_agent.build_session(bargein)
    assert isinstance(session.stt, openai.STT)
    assert session.stt.capabilities.interim_results  # the plugin confirms with interim words
    assert isinstance(session.llm, openai.LLM)
    assert isinstance(session.tts, openai.TTS)
    assert session.vad is bargein.vad
    assert session.options.aec_warmup_duration is None
    assert session.options.interruption["min_words"] == BLOCK_MIN_WORDS


# -- one scenario through the worker's session, offline -----------------------------------------


class WorkerSetup(ConfigSetup):
    """The worker's wiring in the harness: its BargeIn, its session factory (which attaches the
    plugin), its agent and its playground view, to a stand-in participant. Nothing is wrapped here:
    as with RoomIO, the plugin wraps the session's audio itself."""

    def __init__(self, voice_agent: ModuleType) -> None:
        self.voice_agent = voice_agent
        self.bargein: BargeIn = BargeIn(profile=voice_agent.profile_for(WEB, {}))
        self.participant = FakeLocalParticipant()
        self.publisher: Any = None
        self.sessions_built = 0

    def session_kwargs(self) -> dict[str, Any]:
        # what the harness hands AgentSession; build_session below replaces that call
        return {"vad": self.bargein.vad, "turn_handling": self.bargein.turn_handling()}

    def build_session(self, **harness_kwargs: Any) -> AgentSession:
        assert harness_kwargs["vad"]._inner is self.bargein.vad
        self.sessions_built += 1
        return self.voice_agent.build_session(
            self.bargein,
            stt=harness_kwargs["stt"],
            llm=harness_kwargs["llm"],
            tts=harness_kwargs["tts"],
        )

    def agent(self) -> Any:
        return self.voice_agent.VoiceAgent()

    def wrap_input(self, mic: io.AudioInput) -> io.AudioInput:
        return mic

    def wrap_output(self, out: io.AudioOutput) -> io.AudioOutput:
        return out

    def before_session_start(self, session: AgentSession) -> None:
        # as the entrypoint: the playground view starts before the session
        self.publisher = self.voice_agent.start_playground_view(
            session, self.bargein, self.participant
        )

    def trace_events(self) -> list[dict[str, Any]]:
        return [
            {"sample": int(d.t_ms * 16), "kind": f"bargein_{d.action.value}", "reason": d.reason}
            for d in self.bargein.decisions
        ]

    async def aclose(self) -> None:
        if self.publisher is not None:
            await self.publisher.aclose()


@pytest.fixture(scope="module")
def interrupt_manifest(
    tmp_path_factory: pytest.TempPathFactory, piper_speaker: PiperSpeaker
) -> Path:
    d = tmp_path_factory.mktemp("worker")
    syn = piper_speaker.synthesize(USER_TEXT, pitch_semitones=4.0)
    pad = np.zeros(3200, np.float32)
    sf.write(d / "wait.wav", np.concatenate([pad, syn.audio * 0.7, pad]), 16000)
    line = {
        "id": "worker-interrupt", "label": "interrupt", "agent_text": AGENT_TEXT,
        "user_audio": "wait.wav", "user_onset_s": 2.0,
        "speech_start_s": (3200 + syn.words[0].start_sample) / 16000, "user_text": USER_TEXT,
        "echo": {"gain_db": -10, "delay_ms": 120},
    }  # fmt: skip
    (d / "m.jsonl").write_text(json.dumps(line) + "\n")
    return d / "m.jsonl"


def test_worker_session_yields_to_an_interrupt_offline(
    voice_agent: ModuleType,
    interrupt_manifest: Path,
    piper_speaker: PiperSpeaker,
) -> None:
    from livekit.plugins import silero

    setups: list[WorkerSetup] = []

    def make(_ctx: HarnessContext) -> WorkerSetup:
        setups.append(WorkerSetup(voice_agent))
        return setups[-1]

    register(EvalConfig(name="worker", description="agents/voice_agent.py's session", make=make))

    (scenario,) = load_manifest(interrupt_manifest)
    resources = HarnessResources(silero=silero.VAD.load(), piper=piper_speaker)
    trace = asyncio.run(run_scenario(scenario, "worker", resources))

    setup = setups[-1]
    assert trace.error is None
    assert setup.sessions_built == 1
    score = score_scenario(trace)
    assert score["measured"] and not score["missed"], score
    assert score["false_yields"] == 0
    kinds = [e["kind"] for e in trace.events if e["kind"].startswith("bargein_")]
    # the interrupt is the reply's last decision; the follow-up reply may see the caller's tail
    # (a soft yield and a resume, under 100 ms or after the scored window)
    assert "bargein_interrupt" in kinds, kinds
    assert kinds[0] in ("bargein_soft_yield", "bargein_interrupt"), kinds
    # the chat context keeps what was said, marked interrupted, shorter than the full reply
    assert trace.context is not None and trace.context.message_interrupted is True
    said = trace.context.message_text.split()
    assert 0 < len(said) < len(AGENT_TEXT.split())
    assert AGENT_TEXT.startswith(" ".join(said[:3]))
    # the playground view saw it
    actions = [m["action"] for m in setup.participant.messages()]
    assert actions[0] in ("soft_yield", "interrupt") and "interrupt" in actions, actions
    attrs = setup.participant.attributes
    assert attrs[ATTR_INTERRUPTS] == "1" and attrs[ATTR_PROFILE] == "speakerphone"
    assert attrs[ATTR_STATE] in ("listening", "speaking")  # the follow-up turn may be playing
