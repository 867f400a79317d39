"""agents/voice_agent.py: configuration checks and profile choice (no LiveKit server needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
from livekit import rtc

_PATH = Path(__file__).resolve().parents[1] / "agents" / "voice_agent.py"


@pytest.fixture(scope="module")
def voice_agent():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("voice_agent", _PATH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_missing_key_is_named(voice_agent, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    for k in voice_agent.REQUIRED_ENV:
        monkeypatch.setenv(k, "x")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(SystemExit, match="OPENAI_API_KEY"):
        voice_agent.check_env()


def test_profile_from_participant(voice_agent, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("BARGEIN_PROFILE", raising=False)
    sip = SimpleNamespace(kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP)
    web = SimpleNamespace(kind=rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD)
    assert voice_agent.profile_for(sip) == "telephony"
    assert voice_agent.profile_for(web) == "speakerphone"
    monkeypatch.setenv("BARGEIN_PROFILE", "headset")
    assert voice_agent.profile_for(sip) == "headset"
