"""EchoCanceller with the real WebRTC APM: ERLE with and without delay alignment, double talk,
other rates, input validation, and the stereo / framing helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from helpers import room_ir as _room_ir
from scipy import signal

from livekit_bargein.aec import AecFrame, EchoCanceller, FrameSplitter, to_mono_float

RATE_HZ = 16_000
_ECHO_DB = -6.0
_NOISE_DBFS = -60.0
_CONVERGED_S = 4.0


@dataclass
class _Scene:
    rate_hz: int
    ref: np.ndarray
    mic: np.ndarray
    echo: np.ndarray
    near: np.ndarray


def _scene(
    speech: dict[str, np.ndarray],
    *,
    delay_ms: float,
    rate_hz: int = RATE_HZ,
    near_at_s: float | None = None,
    seed: int = 0,
) -> _Scene:
    far, near_src = speech["far"], speech["near"]
    if rate_hz != RATE_HZ:
        far = signal.resample_poly(far, rate_hz, RATE_HZ).astype(np.float32)
        near_src = signal.resample_poly(near_src, rate_hz, RATE_HZ).astype(np.float32)
    n = len(far) + rate_hz  # one more second for the echo tail
    ref = np.zeros(n, np.float32)
    ref[: len(far)] = far
    wet = signal.oaconvolve(ref, _room_ir(rate_hz))[:n]
    d = int(round(delay_ms * rate_hz / 1000))
    echo = np.zeros(n, np.float32)
    echo[d:] = wet[: n - d] * 10 ** (_ECHO_DB / 20)
    near = np.zeros(n, np.float32)
    if near_at_s is not None:
        a = int(near_at_s * rate_hz)
        m = min(len(near_src), n - a)
        near[a : a + m] = near_src[:m]
    noise = np.random.default_rng(seed).standard_normal(n) * 10 ** (_NOISE_DBFS / 20)
    mic = (echo + near + noise).astype(np.float32)
    return _Scene(rate_hz, ref, mic, echo, near)


def _run(scene: _Scene, **kwargs: object) -> tuple[EchoCanceller, list[AecFrame]]:
    aec = EchoCanceller(sample_rate_hz=scene.rate_hz, **kwargs)  # type: ignore[arg-type]
    f = scene.rate_hz // 100
    frames = [
        aec.process(scene.mic[i : i + f], scene.ref[i : i + f])
        for i in range(0, len(scene.mic) - f + 1, f)
    ]
    return aec, frames


def _frame_power(x: np.ndarray, frame: int, count: int) -> np.ndarray:
    return np.mean(x[: frame * count].reshape(count, frame).astype(np.float64) ** 2, axis=1)


def _erle_db(scene: _Scene, frames: list[AecFrame]) -> float:
    """10·log10(E[echo²]/E[clean²]) over far-end-active frames after convergence."""
    f = scene.rate_hz // 100
    clean = np.concatenate([fr.clean for fr in frames])
    p_echo = _frame_power(scene.echo, f, len(frames))
    p_clean = _frame_power(clean, f, len(frames))
    active = p_echo > p_echo.max() * 1e-3
    active[: int(_CONVERGED_S * 100)] = False
    return float(10 * np.log10(p_echo[active].sum() / p_clean[active].sum()))


# -- cancellation ---------------------------------------------------------------------------


@pytest.mark.parametrize("delay_ms", [50, 300, 800])
def test_erle_with_alignment(speech: dict[str, np.ndarray], delay_ms: int) -> None:
    scene = _scene(speech, delay_ms=delay_ms)
    aec, frames = _run(scene)
    erle_db = _erle_db(scene, frames)
    assert erle_db >= 25.0, erle_db
    assert aec.delay_ms is not None and abs(aec.delay_ms - delay_ms) <= 10.0
    if delay_ms > aec.align_above_ms:
        # AEC3 gets the reference ~50 ms ahead of the echo, never behind it.
        residual_ms = aec.delay_ms - aec.pre_delay_ms
        assert 10.0 <= residual_ms <= 90.0
    else:
        assert aec.pre_delay_ms == 0.0  # short delays are left to AEC3 alone
    # Far-end single talk: no double talk after convergence, and the bookkeeping agrees.
    late = [fr for fr in frames[int(_CONVERGED_S * 100) :] if fr.far_end_active]
    assert np.mean([fr.double_talk for fr in late]) < 0.05
    last = frames[-200]
    assert last.erle_db >= 25.0
    assert abs(last.echo_path_gain_db - _ECHO_DB) <= 6.0
    assert last.residual_echo_db < last.echo_level_db - 25.0


def test_800ms_needs_the_alignment(speech: dict[str, np.ndarray]) -> None:
    scene = _scene(speech, delay_ms=800)
    aec, frames = _run(scene, max_delay_ms=0)
    assert aec.delay_ms is None and aec.pre_delay_ms == 0.0
    unaligned_db = _erle_db(scene, frames)
    _, frames = _run(scene)
    aligned_db = _erle_db(scene, frames)
    assert unaligned_db < 10.0, unaligned_db
    assert aligned_db - unaligned_db >= 20.0


@pytest.mark.parametrize("delay_ms", [300, 800])
def test_double_talk_keeps_the_near_end(speech: dict[str, np.ndarray], delay_ms: int) -> None:
    near_at_s = 6.0
    scene = _scene(speech, delay_ms=delay_ms, near_at_s=near_at_s)
    _, frames = _run(scene)
    f = scene.rate_hz // 100
    clean = np.concatenate([fr.clean for fr in frames])
    a = int(near_at_s * scene.rate_hz)
    b = a + int(np.flatnonzero(scene.near[a:])[-1])
    # AEC3 (+ NS) delays its output by ~10-15 ms: take the best lag up to 30 ms.
    corr = max(
        float(np.corrcoef(clean[a + lag : b + lag], scene.near[a:b])[0, 1])
        for lag in range(0, int(0.03 * scene.rate_hz), scene.rate_hz // 1000)
    )
    assert corr > 0.5, corr

    p_near = _frame_power(scene.near, f, len(frames))
    p_echo = _frame_power(scene.echo, f, len(frames))
    dt = np.array([fr.double_talk for fr in frames])
    after = np.arange(len(frames)) >= int(_CONVERGED_S * 100)
    echo_on = p_echo > p_echo.max() * 1e-3
    talking = (p_near > p_near.max() * 1e-3) & echo_on & after
    far_only = echo_on & (p_near == 0) & after
    assert dt[talking].mean() > 0.5, dt[talking].mean()
    assert dt[far_only].mean() < 0.05, dt[far_only].mean()
    # the spectral cue, from the first second on (it needs neither the delay nor AEC3)
    share = np.array([fr.near_end_share or 0.0 for fr in frames])
    assert share[talking].mean() > 3 * max(share[far_only].mean(), 0.02)


@pytest.mark.parametrize("rate_hz", [8_000, 24_000, 48_000])
def test_other_rates(speech: dict[str, np.ndarray], rate_hz: int) -> None:
    scene = _scene(speech, delay_ms=800, rate_hz=rate_hz)
    aec, frames = _run(scene)
    assert all(len(fr.clean) == rate_hz // 100 and fr.clean.dtype == np.float32 for fr in frames)
    assert aec.delay_ms is not None and abs(aec.delay_ms - 800) <= 10.0
    assert _erle_db(scene, frames) >= 25.0


def test_idle_reference_and_near_end_only(speech: dict[str, np.ndarray]) -> None:
    """``ref=None`` ("AEC idle") is silence: nothing breaks and the near end passes through."""
    aec = EchoCanceller(sample_rate_hz=RATE_HZ)
    near = speech["near"]
    frames = [aec.process(near[i : i + 160], None) for i in range(0, len(near) - 159, 160)]
    assert not any(fr.far_end_active or fr.double_talk for fr in frames)
    assert aec.delay_ms is None
    loud = [fr for fr in frames[100:] if fr.mic_level_db > -35.0]
    assert loud and np.median([fr.mic_level_db - fr.clean_level_db for fr in loud]) < 3.0


def test_reset_starts_over(speech: dict[str, np.ndarray]) -> None:
    scene = _scene(speech, delay_ms=300)
    aec, _ = _run(scene)
    assert aec.delay_ms is not None and aec.frames > 0
    aec.reset()
    assert aec.delay_ms is None and aec.frames == 0 and aec.pre_delay_ms == 0.0


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("rate_hz", [44_100, 22_050, 32_000, 0])
def test_unsupported_rate(rate_hz: int) -> None:
    with pytest.raises(ValueError, match=str(rate_hz)):
        EchoCanceller(sample_rate_hz=rate_hz)


def test_wrong_length_names_both_counts() -> None:
    aec = EchoCanceller(sample_rate_hz=16_000)
    with pytest.raises(ValueError, match=r"expected 160 samples.*got 320"):
        aec.process(np.zeros(320, np.float32), None)
    with pytest.raises(ValueError, match=r"ref.*expected 160 samples.*got 80"):
        aec.process(np.zeros(160, np.float32), np.zeros(80, np.float32))
    with pytest.raises(ValueError, match="shape"):
        aec.process(np.zeros((160, 2), np.float32), None)


def test_nan_and_inf_become_zeros() -> None:
    aec = EchoCanceller(sample_rate_hz=16_000)
    rng = np.random.default_rng(0)
    good = (0.1 * rng.standard_normal(160)).astype(np.float32)
    bad = good.copy()
    bad[::7] = np.nan
    bad[3] = np.inf
    for _ in range(5):
        aec.process(good, good)
    out = aec.process(bad, None)
    assert np.all(np.isfinite(out.clean)) and np.isfinite(out.mic_level_db)
    out = aec.process(good, bad)
    assert np.all(np.isfinite(out.clean)) and np.isfinite(out.ref_level_db)
    assert aec.bad_frames == 2
    aec.process(good, good)
    assert aec.bad_frames == 2


# -- helpers --------------------------------------------------------------------------------


def test_to_mono_float() -> None:
    stereo = np.array([32767, -32768, 16384, 16384, 0, 100], np.int16)
    mono = to_mono_float(stereo, num_channels=2)
    assert mono.dtype == np.float32
    np.testing.assert_allclose(mono, [-0.5 / 32768, 0.5, 50 / 32768], atol=1e-6)
    np.testing.assert_allclose(to_mono_float(stereo[:2], num_channels=1), [32767 / 32768, -1.0])
    with pytest.raises(ValueError, match="channels"):
        to_mono_float(stereo[:5], num_channels=2)


def test_frame_splitter_carries_remainders() -> None:
    splitter = FrameSplitter(sample_rate_hz=48_000)
    stream = np.arange(48_000, dtype=np.float32)
    out: list[np.ndarray] = []
    for size in (7, 480, 1000, 3, 960, 45_550):
        a = sum(len(x) for x in out) + splitter.pending_samples
        out += splitter.push(stream[a : a + size])
    assert all(len(x) == 480 for x in out)
    joined = np.concatenate(out)
    np.testing.assert_array_equal(joined, stream[: len(joined)])
    assert len(joined) + splitter.pending_samples == 48_000
    assert splitter.pending_samples < 480
    splitter.reset()
    assert splitter.pending_samples == 0
    with pytest.raises(ValueError):
        FrameSplitter(sample_rate_hz=44_123)


def test_no_echo_path_leaves_a_caller_over_the_far_end_alone(
    speech: dict[str, np.ndarray],
) -> None:
    """Without an echo, an unconverged AEC3 still suppresses a caller who talks over the far end;
    waiting for a confirmed echo path before feeding it the reference keeps the caller whole."""
    n = RATE_HZ * 8
    far_at, near_at = int(1.35 * RATE_HZ), int(1.6 * RATE_HZ)
    ref = np.zeros(n, np.float32)
    ref[far_at:] = speech["far"][: n - far_at]
    # a microphone's own noise floor (-70 dBFS): digital silence makes both onsets sharp
    # steps that correlate at their time difference like an echo would
    mic = (np.random.default_rng(1).standard_normal(n) * 10 ** (-70 / 20)).astype(np.float32)
    m = min(len(speech["near"]), n - near_at)
    mic[near_at : near_at + m] += 0.5 * speech["near"][:m]
    seg = slice(near_at, near_at + int(1.5 * RATE_HZ))

    def kept_db(wait_for_echo: bool) -> float:
        aec = EchoCanceller(sample_rate_hz=RATE_HZ, wait_for_echo=wait_for_echo)
        f = RATE_HZ // 100
        clean = np.concatenate([aec.process(mic[i : i + f], ref[i : i + f]).clean
                                for i in range(0, n, f)])
        assert aec.delay_ms is None  # no echo, and no chance peak taken for one
        return float(10 * np.log10(np.sum(clean[seg] ** 2.0) / np.sum(mic[seg] ** 2.0)))

    assert kept_db(True) > -3.0
    assert kept_db(False) < -6.0  # what the wait avoids


# -- echo-path gain and residual bookkeeping -------------------------------------------------


def test_far_end_into_a_silent_mic_bounds_the_gain_down(speech: dict[str, np.ndarray]) -> None:
    """No echo at all: the pessimistic start (echo as loud as the reference) must not last,
    or a caller talking over the agent is taken for echo for the whole call."""
    n = RATE_HZ * 6
    ref = speech["far"][:n].astype(np.float32)
    mic = (np.random.default_rng(2).standard_normal(n) * 10 ** (-70 / 20)).astype(np.float32)
    aec, frames = _run(_Scene(RATE_HZ, ref, mic, np.zeros(n, np.float32), mic * 0))
    assert frames[0].echo_path_gain_db == 0.0
    # 300 ms of energy at every lag up to 1 s: bounded from ~1.3 s of far-end speech on,
    # down to what the mic's own noise (-70 dBFS) could hide
    t = next(i for i, fr in enumerate(frames) if fr.echo_path_gain_db < -35.0)
    assert t <= 200, t  # within 2 s
    assert max(fr.echo_path_gain_db for fr in frames[t:]) < -35.0
    assert max(fr.residual_echo_db for fr in frames[t:]) < -40.0  # a caller at -40 dBFS is heard
    assert aec.delay_ms is None


@pytest.mark.parametrize("delay_ms", [120, 400])
def test_the_gain_bound_never_undercuts_a_real_echo(
    speech: dict[str, np.ndarray], delay_ms: int
) -> None:
    scene = _scene(speech, delay_ms=delay_ms)
    _, frames = _run(scene)
    gains = np.array([fr.echo_path_gain_db for fr in frames])
    # the echo is -6 dB (+ the room's reverberation) under the reference at every moment
    assert gains.min() >= _ECHO_DB - 6.0, gains.min()


def test_residual_estimate_covers_most_leaking_frames(speech: dict[str, np.ndarray]) -> None:
    """Judged by AEC3's lower-quartile removal, not its median: the median is total removal
    (digital silence) on most echo-only frames, and phrase ends leak far over it."""
    scene = _scene(speech, delay_ms=200)
    _, frames = _run(scene)
    late = [fr for fr in frames[int(_CONVERGED_S * 100) :] if fr.far_end_active]
    over = [fr.clean_level_db > fr.residual_echo_db for fr in late]
    assert np.mean(over) <= 0.25, np.mean(over)
    assert all(fr.residual_echo_db <= fr.echo_level_db - 10.0 for fr in late)


def test_near_end_share_needs_echo_cancellation(speech: dict[str, np.ndarray]) -> None:
    scene = _scene(speech, delay_ms=100, near_at_s=2.0)
    _, on = _run(scene)
    assert all(fr.near_end_share is not None for fr in on[4:])
    _, off = _run(scene, echo_cancellation=False)
    assert all(fr.near_end_share is None for fr in off)


@pytest.mark.parametrize("rate_hz", [16_000, 48_000])
def test_near_end_estimate_rides_along_when_asked(
    speech: dict[str, np.ndarray], rate_hz: int
) -> None:
    scene = _scene(speech, delay_ms=300, rate_hz=rate_hz, near_at_s=5.0)
    _, frames = _run(scene, separate_near_end=True)
    est = np.concatenate([fr.near_end for fr in frames if fr.near_end is not None])
    f = rate_hz // 100
    # a 20 ms hop per two frames; the open hop of the last window is still held
    assert len(est) == (len(frames) // 2 * 2 - 2) * f
    assert {len(fr.near_end) for fr in frames if fr.near_end is not None} == {0, 2 * f}
    assert not frames[10].near_end_trusted and frames[int(4.5 * 100)].near_end_trusted
    # echo taken out, the caller kept: louder than the echo-only stretch by far
    p = _frame_power(est, f, len(est) // f)
    echo_only = 10 * np.log10(np.median(p[300:480]) + 1e-12)
    caller = 10 * np.log10(np.median(p[520:900]) + 1e-12)
    assert caller - echo_only > 15
    _, plain = _run(scene)
    assert all(fr.near_end is None and not fr.near_end_trusted for fr in plain)


def test_reference_moved_marks_each_realignment(speech: dict[str, np.ndarray]) -> None:
    # 800 ms is beyond AEC3's reach: the reference is re-aligned once the delay is found, and
    # the frame it happens on says so (the engine treats AEC3 as re-converging from there).
    scene = _scene(speech, delay_ms=800)
    aec, frames = _run(scene)
    moved = [i for i, fr in enumerate(frames) if fr.reference_moved]
    assert moved, "the re-alignment was not reported"
    assert aec.pre_delay_ms > 0.0
    first = moved[0]
    assert frames[first].delay_ms is not None
    assert all(fr.delay_ms is None for fr in frames[:first])
    assert len(moved) <= 3  # a steady path is not re-aligned over and over


def test_short_delay_never_moves_the_reference(speech: dict[str, np.ndarray]) -> None:
    scene = _scene(speech, delay_ms=50)
    _, frames = _run(scene)
    assert not any(fr.reference_moved for fr in frames)


def test_a_vanished_echo_path_gives_aec3_silence_again(speech: dict[str, np.ndarray]) -> None:
    # Speakerphone, then the caller takes the phone to the ear and talks: the agent keeps
    # playing, its echo is gone. The path is released and AEC3 stops getting the reference,
    # so it cannot suppress the caller against an echo that is not there.
    scene = _scene(speech, delay_ms=300)
    far = scene.ref
    ref = np.concatenate([far, far, far])
    n1 = len(far)
    near = np.resize(speech["near"], 2 * n1) * np.float32(0.3)
    mic = np.concatenate([scene.mic, near]).astype(np.float32)
    aec = EchoCanceller(sample_rate_hz=RATE_HZ)
    f = RATE_HZ // 100
    frames = [aec.process(mic[i : i + f], ref[i : i + f]) for i in range(0, len(mic) - f + 1, f)]
    assert frames[n1 // f - 1].delay_ms is not None  # found on the speakerphone part
    released = next(i for i in range(n1 // f, len(frames)) if frames[i].delay_ms is None)
    assert (released - n1 // f) * 10 <= 8000
    # after the release the caller passes through: cleaned level close to the raw mic's
    late = frames[released + 100 :]
    talk = [fr for fr in late if fr.mic_level_db > -35.0]
    assert len(talk) > 50
    loss_db = np.median([fr.mic_level_db - fr.clean_level_db for fr in talk])
    assert loss_db < 3.0, loss_db


def test_mic_gain_hears_a_quiet_line_as_the_loud_one(speech: dict[str, np.ndarray]) -> None:
    """A line 12 dB quieter, raised by ``mic_gain_db=12``, gives the loud line's output levels
    and near-end shares; unraised, the shares differ (the echo's worst case is set against the
    digital playback, which does not get quieter with the line)."""
    loud = _scene(speech, delay_ms=100, near_at_s=3.0)
    quiet = _Scene(loud.rate_hz, loud.ref, loud.mic * np.float32(10 ** (-12 / 20)), loud.echo,
                   loud.near)
    _, ref_frames = _run(loud)
    _, raised = _run(quiet, mic_gain_db=12.0)
    _, unraised = _run(quiet)

    def levels(frames: list[AecFrame]) -> np.ndarray:
        return np.array([fr.clean_level_db for fr in frames])

    def shares(frames: list[AecFrame]) -> np.ndarray:
        return np.array([fr.near_end_share or 0.0 for fr in frames])

    assert np.median(np.abs(levels(raised) - levels(ref_frames))) < 0.1
    assert np.abs(levels(raised) - levels(ref_frames)).mean() < 1.0
    assert np.allclose(shares(raised), shares(ref_frames), atol=0.02)
    assert np.abs(levels(unraised) - levels(ref_frames)).mean() > 8.0
    assert np.abs(shares(unraised) - shares(ref_frames)).max() > 0.1


def test_mic_gain_clips_at_full_scale_and_rejects_nan(speech: dict[str, np.ndarray]) -> None:
    scene = _scene(speech, delay_ms=100, near_at_s=3.0)
    aec, frames = _run(scene, mic_gain_db=60.0)
    loudest_db = max(fr.mic_level_db for fr in frames)
    assert -1.0 < loudest_db <= 1e-6  # raised 60 dB, held at full scale
    assert aec.bad_frames == 0
    with pytest.raises(ValueError, match="mic_gain_db"):
        EchoCanceller(sample_rate_hz=RATE_HZ, mic_gain_db=float("nan"))
