from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from livekit_bargein.eval import sounds

SR_HZ = sounds.SAMPLE_RATE_HZ

# Duration bounds implied by each recipe (counts x durations + gaps), with a little slack.
DURATION_RANGE_S: dict[str, tuple[float, float]] = {
    "cough": (0.15, 1.6),
    "laugh": (0.45, 2.2),
    "throat_clear": (0.2, 0.95),
    "sneeze": (0.3, 0.9),
    "breath": (0.4, 2.4),
    "door_knock": (0.3, 1.7),
    "keyboard": (1.4, 4.05),
    "phone_ring": (1.45, 4.05),
    "dog_bark": (0.1, 2.5),
    "music": (1.95, 5.05),
}
SEEDS = range(5)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_every_generator_has_a_duration_range() -> None:
    assert set(DURATION_RANGE_S) == set(sounds.GENERATORS)
    assert set(sounds.GENERATORS) == set(sounds.VOCAL_EVENTS) | set(sounds.NOISE_EVENTS)


@pytest.mark.parametrize("kind", sorted(sounds.GENERATORS))
def test_generator_shape_range_and_determinism(kind: str) -> None:
    lo_s, hi_s = DURATION_RANGE_S[kind]
    outs = [sounds.synthesize_event(kind, _rng(seed)) for seed in SEEDS]
    for x in outs:
        assert x.dtype == np.float32 and x.ndim == 1
        assert lo_s <= len(x) / SR_HZ <= hi_s, (kind, len(x) / SR_HZ)
        assert np.all(np.isfinite(x))
        assert 0.1 < float(np.max(np.abs(x))) <= 1.0
    # Same seed: identical; different seeds: different events, not clones.
    again = sounds.synthesize_event(kind, _rng(0))
    assert np.array_equal(outs[0], again)
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            a, b = outs[i], outs[j]
            assert len(a) != len(b) or not np.allclose(a, b, atol=1e-3), (kind, i, j)


def test_unknown_event_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        sounds.synthesize_event("sigh", _rng(0))


def _envelope_db(x: np.ndarray, frame: int) -> np.ndarray:
    n = len(x) // frame
    return 10 * np.log10(
        np.mean(x[: n * frame].astype(np.float64).reshape(n, frame) ** 2, 1) + 1e-12
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_cough_has_a_sharp_onset(seed: int) -> None:
    x = sounds.cough(_rng(seed))
    env_db = _envelope_db(x, SR_HZ // 1000)  # 1 ms frames
    peak_db = env_db.max()
    start = int(np.argmax(env_db >= peak_db - 30))
    loud = int(np.argmax(env_db >= peak_db - 6))
    assert loud - start <= 10, f"rise of {loud - start} ms"


@pytest.mark.parametrize("seed", SEEDS)
def test_laugh_syllables_are_periodic_at_3_to_7_hz(seed: int) -> None:
    x = sounds.laugh(_rng(seed))
    env = 10 ** (_envelope_db(x, SR_HZ // 100) / 20)  # amplitude per 10 ms frame
    env = (env - env.mean()) * np.hanning(len(env))
    spec = np.abs(np.fft.rfft(env, n=4096))
    freqs_hz = np.fft.rfftfreq(4096, d=0.01)
    band = (freqs_hz >= 1.0) & (freqs_hz <= 20.0)
    peak_hz = float(freqs_hz[band][np.argmax(spec[band])])
    assert 3.0 <= peak_hz <= 7.0, peak_hz


def test_sneeze_ends_with_a_broadband_burst() -> None:
    x = sounds.sneeze(_rng(1))
    env_db = _envelope_db(x, SR_HZ // 1000)
    peak_ms = int(np.argmax(env_db))
    # The explosion comes after the inhale, not at the start.
    assert peak_ms > 150


def test_room_rir_direct_path_unit_energy_and_decay() -> None:
    rir = sounds.room_rir(_rng(3), rt60_s=0.4, distance_m=1.0)
    assert rir.dtype == np.float32
    # The direct path is the first tap (no added delay when convolving) and among the loudest
    # (its energy may be split over two taps by the fractional delay).
    assert abs(float(rir[0])) >= 0.5 * float(np.max(np.abs(rir)))
    assert np.sum(rir.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-4)
    assert 0.3 * SR_HZ <= len(rir) <= 0.5 * SR_HZ
    tenth = len(rir) // 10
    assert np.sum(rir[-tenth:] ** 2) < 1e-3 * np.sum(rir[:tenth] ** 2)
    assert np.array_equal(rir, sounds.room_rir(_rng(3), rt60_s=0.4, distance_m=1.0))
    assert not np.array_equal(rir[:100], sounds.room_rir(_rng(4), rt60_s=0.4, distance_m=1.0)[:100])


def test_room_rir_reverberant_room_is_longer() -> None:
    dry = sounds.room_rir(_rng(0), rt60_s=0.2, distance_m=0.5)
    wet = sounds.room_rir(_rng(0), rt60_s=0.6, distance_m=3.0)

    # Direct-to-reverberant ratio: the first 2.5 ms against the rest.
    def drr_db(r: np.ndarray) -> float:
        n = SR_HZ * 25 // 10_000
        return 10 * np.log10(np.sum(r[:n] ** 2) / np.sum(r[n:] ** 2))

    assert len(wet) > 2 * len(dry)
    assert drr_db(dry) > drr_db(wet) + 6


def test_convolve_keeps_the_tail() -> None:
    x = np.zeros(1000, np.float32)
    x[0] = 1.0
    rir = sounds.room_rir(_rng(0), rt60_s=0.2, distance_m=0.5)
    y = sounds.convolve(x, rir)
    assert len(y) == len(x) + len(rir) - 1
    np.testing.assert_allclose(y[: len(rir)], rir, atol=1e-6)


def test_levels() -> None:
    rng = _rng(0)
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SR_HZ) / SR_HZ)
    x = np.concatenate([np.zeros(SR_HZ), tone, np.zeros(SR_HZ)]).astype(np.float32)
    # Silence around the tone does not dilute the active level.
    assert sounds.active_rms_dbfs(x) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.1)
    y = sounds.set_active_level(x, -30.0)
    assert sounds.active_rms_dbfs(y) == pytest.approx(-30.0, abs=0.05)
    assert float(np.max(np.abs(sounds.limit_peak(4 * x)))) == pytest.approx(0.98)
    np.testing.assert_array_equal(sounds.limit_peak(x), x)
    floor = sounds.room_tone(rng, SR_HZ, level_dbfs=-60.0)
    assert 10 * np.log10(np.mean(floor.astype(np.float64) ** 2)) == pytest.approx(-60.0, abs=0.1)


def test_ambience_is_found_through_the_package() -> None:
    x = sounds.load_ambience("keyboard-typing2.ogg")
    assert x.dtype == np.float32 and x.ndim == 1
    assert 3.0 < len(x) / SR_HZ < 3.7
    assert not x.flags.writeable  # shared by the cache
    bed = sounds.ambience_bed(_rng(0), "office-ambience.ogg", duration_s=8.0)
    assert len(bed) == 8 * SR_HZ and np.all(np.isfinite(bed))
    # Seamless loop: the jump from the last to the first sample is like any other step.
    steps = np.abs(np.diff(bed.astype(np.float64)))
    assert abs(float(bed[0]) - float(bed[-1])) < np.percentile(steps, 99.9) + 1e-6


# ---------------------------------------------------------------------------------------------
# Silero: vocal sounds must not read as continuous speech (Piper speech must)

WINDOW = 512  # Silero's window at 16 kHz
WINDOW_S = WINDOW / SR_HZ


@pytest.fixture(scope="module")
def silero_session() -> Any:
    from livekit.plugins.silero import onnx_model

    return onnx_model.new_inference_session(force_cpu=True)


def _speech_probs(session: object, x: np.ndarray) -> np.ndarray:
    from livekit.plugins.silero import onnx_model

    model = onnx_model.OnnxModel(onnx_session=session, sample_rate=SR_HZ)
    assert model.window_size_samples == WINDOW
    pad = np.zeros(SR_HZ // 4, np.float32)
    x = np.concatenate([pad, x.astype(np.float32), pad])
    return np.array([model(x[i : i + WINDOW]) for i in range(0, len(x) - WINDOW + 1, WINDOW)])


def _longest_run_s(probs: np.ndarray, threshold: float = 0.5) -> float:
    best = cur = 0
    for p in probs:
        cur = cur + 1 if p > threshold else 0
        best = max(best, cur)
    return best * WINDOW_S


def _at_speech_level(x: np.ndarray) -> np.ndarray:
    return sounds.limit_peak(sounds.set_active_level(x, -22.0))


@pytest.mark.parametrize("kind", ["cough", "laugh"])
def test_silero_does_not_hear_continuous_speech(silero_session: object, kind: str) -> None:
    runs_s, shares = [], []
    for seed in range(6):
        x = _at_speech_level(sounds.synthesize_event(kind, _rng(seed)))
        probs = _speech_probs(silero_session, x)
        runs_s.append(_longest_run_s(probs))
        shares.append(float(np.mean(probs > 0.5)))
    assert max(runs_s) < 0.5, runs_s
    assert float(np.mean(shares)) < 0.3, shares


def test_silero_hears_piper_speech(silero_session: object) -> None:
    pytest.importorskip("piper")
    from livekit_bargein.eval.piper_voice import PiperSpeaker

    text = "wait, stop, I need to change the date"
    syn = PiperSpeaker.load().synthesize(text, deterministic=True)
    probs = _speech_probs(silero_session, _at_speech_level(syn.audio))
    assert _longest_run_s(probs) >= 0.5
