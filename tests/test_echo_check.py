"""EchoLikeness: the cleaned envelope follows the played one at the echo delay, or it does not."""

from __future__ import annotations

import numpy as np
import pytest

from livekit_bargein.echo_check import EchoLikeness


def _syllables(n_frames: int, seed: int) -> np.ndarray:
    """A speech-like 10 ms level envelope (dBFS): ~150-300 ms syllables with short gaps."""
    rng = np.random.default_rng(seed)
    env = np.full(n_frames, -75.0)
    i = 0
    while i < n_frames:
        seg = env[i : i + int(rng.integers(15, 30))]
        seg[:] = rng.uniform(-35.0, -20.0) + rng.normal(0.0, 1.5, len(seg))
        length = len(seg)
        i += length + int(rng.integers(3, 12))
    return env


def _fed(clean_db: np.ndarray, ref_db: np.ndarray) -> EchoLikeness:
    e = EchoLikeness()
    for c, r in zip(clean_db, ref_db, strict=True):
        e.push(float(c), float(r))
    return e


@pytest.mark.parametrize("delay_frames", [0, 12, 45])
def test_leaked_echo_follows_the_played_envelope_at_its_delay(delay_frames: int) -> None:
    played = _syllables(200, seed=1)
    leak = np.full_like(played, -80.0)
    leak[delay_frames:] = played[: len(played) - delay_frames] - 30.0  # 30 dB under, same shape
    e = _fed(leak, played)
    assert e.score(delay_frames=delay_frames) > 0.9
    # far from the delay, the same leak does not line up with the played syllables
    assert e.score(delay_frames=delay_frames + 60) < 0.5


def test_a_caller_does_not_follow_the_played_envelope() -> None:
    played, caller = _syllables(200, seed=1), _syllables(200, seed=2)
    assert _fed(caller, played).score(delay_frames=12) < 0.5


def test_nothing_to_compare_scores_zero() -> None:
    played = _syllables(200, seed=1)
    assert EchoLikeness().score(delay_frames=0) == 0.0  # empty
    assert _fed(played[:10], played[:10]).score(delay_frames=0) == 0.0  # shorter than a window
    flat = np.full(200, -40.0)
    assert _fed(flat, played).score(delay_frames=0) == 0.0  # the cleaned mic follows nothing
    silent = np.full(200, -90.0)
    assert _fed(played, silent).score(delay_frames=0) == 0.0  # nothing was played
    # a delay beyond the history has no window to compare
    assert _fed(played, played).score(delay_frames=500) == 0.0


def test_without_a_delay_every_lag_is_searched() -> None:
    played = _syllables(200, seed=1)
    leak = np.full_like(played, -80.0)
    leak[70:] = played[:-70] - 30.0
    e = _fed(leak, played)
    assert e.score() == pytest.approx(e.score(delay_frames=70))
    assert e.score() > 0.9
