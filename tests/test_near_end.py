"""NearEndDetector: an echo (any delay up to 1 s, reverberant) is explained by the played audio;
another voice over it, or sound while nothing played, is not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import room_ir
from scipy import signal

from livekit_bargein.near_end import NearEndDetector

RATE_HZ = 16_000


def _shares(mic: np.ndarray, ref: np.ndarray, rate_hz: int = RATE_HZ, **kw: Any) -> np.ndarray:
    det = NearEndDetector(sample_rate_hz=rate_hz, **kw)
    f = rate_hz // 100
    out = [det.push(mic[i : i + f], ref[i : i + f]) for i in range(0, len(mic) - f + 1, f)]
    return np.array([np.nan if s is None else s for s in out])


def _echo(far: np.ndarray, delay_ms: float, gain_db: float, rate_hz: int = RATE_HZ) -> np.ndarray:
    wet = signal.oaconvolve(far, room_ir(rate_hz))[: len(far)]
    d = int(delay_ms * rate_hz / 1000)
    echo = np.zeros_like(far)
    echo[d:] = wet[: len(far) - d] * 10 ** (gain_db / 20)
    return echo


def _frame_db(x: np.ndarray, rate_hz: int = RATE_HZ) -> np.ndarray:
    f = rate_hz // 100
    n = len(x) // f
    p = np.mean(x[: n * f].reshape(n, f).astype(np.float64) ** 2, axis=1)
    return 10 * np.log10(p + 1e-12)


@pytest.mark.parametrize("delay_ms", [0, 300, 800])
def test_an_echo_alone_is_explained_at_any_delay(
    speech: dict[str, np.ndarray], delay_ms: int
) -> None:
    far = speech["far"]
    mic = _echo(far, delay_ms, gain_db=0.0)
    mic += np.random.default_rng(1).standard_normal(len(mic)).astype(np.float32) * 1e-3
    shares = _shares(mic, far)
    heard = _frame_db(mic)[: len(shares)] > -45
    heard[: int((delay_ms + 100) / 10)] = False  # its first echo needs the played audio first
    # (0.03 without the learned gain bound, 0.05 with it: a 0 dB echo through a room)
    assert np.percentile(shares[heard], 95) < 0.08
    assert np.nanmax(shares[heard]) < 0.3  # under near_end_share_min (0.4)


@pytest.mark.parametrize("delay_ms", [0, 300, 800])
def test_a_caller_over_the_echo_is_not_explained(
    speech: dict[str, np.ndarray], delay_ms: int
) -> None:
    far, near = speech["far"], speech["near"]
    echo = _echo(far, delay_ms, gain_db=-6.0)
    at = 3 * RATE_HZ
    caller = np.zeros_like(far)
    caller[at : at + len(near)] = near[: len(far) - at]
    shares = _shares(echo + caller, far)
    # windows where the caller is at least as loud as the echo: someone else is there
    n = len(shares)
    loud = (_frame_db(caller)[:n] > _frame_db(echo)[:n]) & (_frame_db(caller)[:n] > -40)
    assert loud.sum() > 50
    # A partial cue (a same-voice caller +4 semitones: some windows match some delay of the
    # agent's 12 s), but one no echo reaches.
    assert np.mean(shares[loud] >= 0.3) > 0.3
    onset = int(np.argmax(loud))
    assert np.nanmax(shares[onset : onset + 30]) >= 0.3  # within 300 ms of the caller


def test_with_no_echo_path_a_caller_quieter_than_the_agent_is_not_explained(
    speech: dict[str, np.ndarray],
) -> None:
    # a headset: nothing of the agent reaches the mic. The fixed margin lets the agent's audio
    # (at some delay) cover a caller 12 dB under it; the learned gain bound rules that out.
    far, near = speech["far"], speech["near"]
    at = 3 * RATE_HZ
    caller = np.zeros_like(far)
    seg = near[: len(far) - at]
    caller[at : at + len(seg)] = seg * 10 ** (-12 / 20) * np.std(far) / np.std(near)
    mic = caller + np.random.default_rng(2).standard_normal(len(far)).astype(np.float32) * 1e-3
    bounded, fixed = _shares(mic, far), _shares(mic, far, gain_bound_margin_db=None)
    loud = _frame_db(caller)[: len(bounded)] > -50
    assert np.mean(bounded[loud] >= 0.4) > 0.5
    assert np.mean(fixed[loud] >= 0.4) < 0.2
    onset = int(np.argmax(loud))
    assert np.nanmax(bounded[onset : onset + 30]) >= 0.4  # within 300 ms of the caller


@pytest.mark.parametrize(("step_db", "cue_frames_max"), [(10.0, 0), (20.0, 70)])
def test_a_louder_echo_path_is_followed_within_the_history(
    speech: dict[str, np.ndarray], step_db: float, cue_frames_max: int
) -> None:
    # the caller turns the volume up mid-reply: within the bound's margin (18 dB) nothing
    # changes; past it the echo reads as near-end until the history (1.5 s) has seen it
    far = speech["far"]
    at = 5 * RATE_HZ
    mic = _echo(far, 200, gain_db=-6.0 - step_db)
    mic[at:] = _echo(far, 200, gain_db=-6.0)[at:]
    mic += np.random.default_rng(1).standard_normal(len(mic)).astype(np.float32) * 1e-3
    shares = _shares(mic, far)
    heard = _frame_db(mic)[: len(shares)] > -45
    cue = np.flatnonzero((shares >= 0.4) & heard)
    # 10 ms frames (measured: 0 and 64; 28 before the typical gain)
    assert len(cue) <= cue_frames_max
    assert all(at // 160 <= k < at // 160 + 150 for k in cue)  # only after the step, < 1.5 s


def _onset_shares(
    speech: dict[str, np.ndarray], level_db: float, **kw: Any
) -> tuple[np.ndarray, np.ndarray]:
    """A caller 6 dB under the agent's playback over a 0 dB echo through a room, everything the
    mic hears at ``level_db``: the shares over the caller's first 300 ms, and over echo alone."""
    far, near = speech["far"], speech["near"]
    echo = _echo(far, 200, gain_db=0.0)
    at = 4 * RATE_HZ
    caller = np.zeros_like(far)
    seg = near[: len(far) - at]
    caller[at : at + len(seg)] = seg * 10 ** (-6 / 20) * np.std(far) / np.std(near)
    hiss = np.random.default_rng(3).standard_normal(len(far)).astype(np.float32) * 1e-4
    shares = _shares((echo + caller + hiss) * np.float32(10 ** (level_db / 20)), far, **kw)
    onset = int(np.argmax(_frame_db(caller)[: len(shares)] > -40))
    heard = _frame_db(echo)[: len(shares)] > -45
    heard[:150] = False  # the reply's first 1.5 s: the history fills
    heard[onset - 10 :] = False
    return shares[onset : onset + 30], shares[heard]


def test_the_bound_follows_the_lines_level(speech: dict[str, np.ndarray]) -> None:
    """The same call heard 12 dB quieter. The cap over the digital playback binds at the louder
    level only; the echo's typical gain scales with the line, so with it the quieter line's
    echo explains less of the caller's onset, and the two levels read closer."""
    loud, loud_echo = _onset_shares(speech, 0.0)
    quiet, quiet_echo = _onset_shares(speech, -12.0)
    loud_capped, _ = _onset_shares(speech, 0.0, typical_gain_margin_db=None)
    quiet_capped, _ = _onset_shares(speech, -12.0, typical_gain_margin_db=None)
    # measured: 0.097 against 0.052; level gaps 0.049 against 0.067
    assert float(np.mean(quiet)) > 1.5 * float(np.mean(quiet_capped))
    gap = float(np.mean(loud)) - float(np.mean(quiet))
    assert 0.0 <= gap < float(np.mean(loud_capped)) - float(np.mean(quiet_capped))
    for echo_only in (loud_echo, quiet_echo):  # and the echo alone is still explained
        assert np.nanmax(echo_only) < 0.3


def test_sound_while_nothing_played_is_all_near_end(speech: dict[str, np.ndarray]) -> None:
    near = speech["near"]
    shares = _shares(near, np.zeros_like(near))
    heard = _frame_db(near)[: len(shares)] > -40
    assert np.mean(shares[heard] > 0.9) > 0.95


def test_silence_is_nothing_and_the_first_window_is_unknown() -> None:
    shares = _shares(np.zeros(RATE_HZ, np.float32), np.zeros(RATE_HZ, np.float32))
    assert np.isnan(shares[0])  # 40 ms window not full yet
    assert np.all(shares[4:] == 0.0)


@pytest.mark.parametrize("rate_hz", [8_000, 48_000])
def test_other_rates(speech: dict[str, np.ndarray], rate_hz: int) -> None:
    far = signal.resample_poly(speech["far"], rate_hz, RATE_HZ).astype(np.float32)
    near = signal.resample_poly(speech["near"], rate_hz, RATE_HZ).astype(np.float32)
    echo = _echo(far, 200, gain_db=-6.0, rate_hz=rate_hz)
    alone = _shares(echo, far, rate_hz)
    heard = _frame_db(echo, rate_hz)[: len(alone)] > -45
    heard[:30] = False
    assert np.percentile(alone[heard], 95) < 0.05 and np.nanmax(alone[heard]) < 0.3
    mic = echo.copy()
    mic[: len(near)] += near * 2.0
    over = _shares(mic, far, rate_hz)
    loud = _frame_db(near * 2.0, rate_hz)[: len(over)] > -30
    assert np.mean(over[: len(loud)][loud] >= 0.3) > 0.3


def test_bad_hop_is_named() -> None:
    with pytest.raises(ValueError, match="hop_ms"):
        NearEndDetector(sample_rate_hz=RATE_HZ, hop_ms=15)


def _separate(
    mic: np.ndarray, ref: np.ndarray, rate_hz: int = RATE_HZ, **kw: Any
) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """(shares, near-end estimate, bound learnt after each frame)."""
    det = NearEndDetector(sample_rate_hz=rate_hz, separate=True, **kw)
    f = rate_hz // 100
    shares, parts, learned = [], [], []
    for i in range(0, len(mic) - f + 1, f):
        s = det.push(mic[i : i + f], ref[i : i + f])
        shares.append(np.nan if s is None else s)
        parts.append(det.pop_near_end())
        learned.append(det.bound_learned)
    return np.array(shares), np.concatenate(parts), learned


def test_separation_leaves_the_share_as_it_was(speech: dict[str, np.ndarray]) -> None:
    far, near = speech["far"], speech["near"]
    mic = _echo(far, 300, gain_db=-6.0)
    mic[RATE_HZ : RATE_HZ + len(near)] += near[: len(mic) - RATE_HZ]
    shares, _, _ = _separate(mic, far)
    np.testing.assert_array_equal(shares, _shares(mic, far))


def test_with_nothing_played_the_estimate_is_the_band_limited_mic(
    speech: dict[str, np.ndarray],
) -> None:
    near = speech["near"]
    _, est, _ = _separate(near, np.zeros_like(near))
    # aligned with the mic from its first sample; the last window's hop is still open
    assert len(est) == len(near) // 160 * 160 - 320
    sos = signal.butter(4, [100, 4000], btype="bandpass", fs=RATE_HZ, output="sos")
    banded = signal.sosfiltfilt(sos, near)[: len(est)]
    corr = np.dot(est, banded) / np.sqrt(np.dot(est, est) * np.dot(banded, banded))
    assert corr > 0.95


def test_the_estimate_drops_the_echo_and_keeps_the_caller(
    speech: dict[str, np.ndarray],
) -> None:
    far, near = speech["far"], speech["near"]
    echo = _echo(far, 300, gain_db=-6.0)
    at = 4 * RATE_HZ
    caller = np.zeros_like(far)
    caller[at : at + len(near)] = near[: len(far) - at]
    _, est, learned = _separate(echo + caller, far)
    n = len(est) // 160
    est_db = _frame_db(est)[:n]
    echo_db, caller_db = _frame_db(echo)[:n], _frame_db(caller)[:n]
    assert learned[at // 160]  # 4 s of the agent: the echo bound is learnt
    # echo alone (after the bound is learnt): mostly taken out
    alone = (echo_db > -40) & (caller_db < -80)
    alone[: at // 160 - 250] = False
    assert alone.sum() > 50
    assert np.median(est_db[alone] - echo_db[alone]) < -15
    # the caller over the echo: much of the caller is left
    over = (caller_db > echo_db) & (caller_db > -40)
    assert over.sum() > 50
    assert np.median(est_db[over] - caller_db[over]) > -6


@pytest.mark.parametrize("at_ms", [700, 900])
def test_a_caller_in_the_replys_first_second_stays_in_the_estimate(
    speech: dict[str, np.ndarray], at_ms: int
) -> None:
    # no echo path; the caller starts while the delay the agent's first syllable has just
    # reached has no history: "that syllable's echo, 3 dB over it" would explain their onset
    far, near = speech["far"], speech["near"]
    at = at_ms * RATE_HZ // 1000
    caller = np.zeros_like(far)
    caller[at : at + len(near)] = near[: len(far) - at]
    mic = caller + np.random.default_rng(2).standard_normal(len(far)).astype(np.float32) * 1e-3

    def kept_db(**kw: Any) -> float:
        _, est, _ = _separate(mic, far, **kw)
        n = len(est) // 160
        est_db, caller_db = _frame_db(est)[:n], _frame_db(caller)[:n]
        onset = int(np.argmax(caller_db > -40))
        first = slice(onset, onset + 30)  # the caller's first 300 ms
        loud = caller_db[first] > -40
        return float(np.median(est_db[first][loud] - caller_db[first][loud]))

    assert kept_db() > -1.5  # measured -0.1 dB
    assert kept_db(estimate_min_history_ms=0.0) < -4.0  # every delay: -6.5 dB


def test_the_echo_bound_is_learnt_from_the_agents_audio_and_forgotten() -> None:
    rng = np.random.default_rng(3)
    far = (rng.standard_normal(3 * RATE_HZ) * 0.05).astype(np.float32)
    far[int(1.5 * RATE_HZ) :] = 0.0  # the agent stops after 1.5 s
    _, _, learned = _separate(far * 0.3, far)
    assert not learned[20]  # 200 ms of audio: the bound is still the cap
    assert learned[140]  # 1.4 s
    assert not learned[-1]  # 1.5 s of silence: nothing left to bound the echo by
    _, _, unbounded = _separate(far * 0.3, far, gain_bound_margin_db=None)
    assert not any(unbounded)


@pytest.mark.parametrize("smear_ms", [0.0, 20.0, 80.0, 2000.0])
def test_the_smeared_reference_is_the_max_over_neighbouring_hops(smear_ms: float) -> None:
    """Kept up to date hop by hop, it equals the bin-wise max over [delay - s, delay + s] hops
    (clipped at the newest) at every delay, also when the smear exceeds the delays searched."""
    rng = np.random.default_rng(3)
    det = NearEndDetector(sample_rate_hz=16_000, max_delay_ms=200.0, smear_ms=smear_ms)
    for _ in range(120):
        ref = (rng.standard_normal(160) * rng.uniform(0.0, 0.3)).astype(np.float32)
        det.push(np.zeros(160, np.float32), ref)
    spec, s, lags = det._ref_spec, det._smear, det._n_lags
    expected = np.stack([spec[max(0, d - s) : d + s + 1].max(axis=0) for d in range(lags)])
    np.testing.assert_array_equal(det._smeared_ref, expected)


class _NoSkip(NearEndDetector):
    _skip_silent = False


def test_the_callers_turn_skips_only_work_whose_result_is_known(
    speech: dict[str, np.ndarray],
) -> None:
    """A reply, a long caller's turn with nothing played (the search and the bound's update
    are skipped), then a reply again over an echo: the same numbers as with every hop worked."""
    far, near = speech["far"], speech["near"]
    second = int(2.5 * RATE_HZ)  # the caller's turn: 2.5 s .. 2.5 s + 4.4 s
    ref = np.concatenate([far[:second], np.zeros(len(near), np.float32), far[second:]])
    mic = _echo(ref, 120, gain_db=-6.0)
    mic[second : second + len(near)] += near
    mic[-len(near) // 2 :] += near[: len(near) // 2]  # and a barge-in on the second reply
    results = []
    for cls in (NearEndDetector, _NoSkip):
        det = cls(sample_rate_hz=RATE_HZ, separate=True)
        shares, parts, skipped = [], [], 0
        for i in range(0, len(mic) - 159, 160):
            shares.append(det.push(mic[i : i + 160], ref[i : i + 160]))
            parts.append(det.pop_near_end())
            skipped += bool(det._bound is not None and det._bound.at_rest)
        results.append((shares, np.concatenate(parts), skipped))
    (shares, est, skipped), (full_shares, full_est, _) = results
    assert skipped > 100  # the bound rested for over a second of the caller's turn
    assert shares == full_shares
    np.testing.assert_array_equal(est, full_est)
    turn = slice(second // 160 + 120, (second + len(near)) // 160)
    assert all(s in (0.0, 1.0) for s in shares[turn])  # nothing explains the caller
