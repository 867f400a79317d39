"""Shared fixtures: one Piper voice per test session and the far/near speech the echo tests use."""

from __future__ import annotations

import numpy as np
import pytest

from livekit_bargein.eval.piper_voice import PiperSpeaker

FAR_TEXT = (
    "Thanks for calling the support line. Your order shipped yesterday and should arrive on "
    "Thursday. If you need to change the delivery address, I can help with that right now. "
    "You can also pick it up at the store, which is open until nine in the evening."
)
NEAR_TEXT = "Wait, sorry, I need to change the address to my office downtown, please."


@pytest.fixture(scope="session")
def piper_speaker() -> PiperSpeaker:
    return PiperSpeaker.load()


@pytest.fixture(scope="session")
def speech(piper_speaker: PiperSpeaker) -> dict[str, np.ndarray]:
    """~12.7 s of far-end speech and ~4.4 s of near-end speech (+4 semitones), at 16 kHz."""
    return {
        "far": piper_speaker.synthesize(FAR_TEXT, out_rate_hz=16_000, deterministic=True).audio,
        "near": piper_speaker.synthesize(
            NEAR_TEXT, out_rate_hz=16_000, pitch_semitones=4, deterministic=True
        ).audio,
    }
