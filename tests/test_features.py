"""Per-window acoustic features, event evidence and level tracking on signals with known answers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from scipy import signal

from livekit_bargein.features import (
    EventEvidence,
    FrameFeatures,
    LevelTracker,
    LevelTrackerOptions,
    analyze_window,
)

FS_HZ = 16_000
WINDOW = 512  # 32 ms at 16 kHz, Silero's window


# --------------------------------------------------------------------------------------------
# signal builders


def _noise_floor(rng: np.random.Generator, n: int, level_db: float = -70.0) -> np.ndarray:
    return 10.0 ** (level_db / 20.0) * rng.standard_normal(n)


def _set_level(x: np.ndarray, level_db: float) -> np.ndarray:
    """Scale so the loudest 32 ms window is at ``level_db`` dBFS RMS."""
    n = len(x) // WINDOW * WINDOW
    peak_ms = float(np.max(np.mean(x[:n].reshape(-1, WINDOW) ** 2, axis=1)))
    return x * (10.0 ** (level_db / 20.0) / math.sqrt(peak_ms))


def _harmonic_complex(f0_hz: float, n: int, fs_hz: int, rng: np.random.Generator) -> np.ndarray:
    t_s = np.arange(n) / fs_hz
    ks = np.arange(1, int(0.45 * fs_hz / f0_hz) + 1)
    phases = rng.uniform(0.0, 2.0 * np.pi, ks.shape[0])
    x = (np.sin(2.0 * np.pi * f0_hz * ks[:, None] * t_s + phases[:, None]) / ks[:, None]).sum(0)
    return 0.1 * x / np.std(x)


def _glottal_train(f0_hz: np.ndarray, fs_hz: int) -> np.ndarray:
    """One pulse per period of the per-sample pitch contour, with the glottal -12 dB/octave tilt."""
    phase = np.cumsum(f0_hz / fs_hz)
    pulses = np.zeros(len(f0_hz))
    pulses[np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1] = 1.0
    b, a = signal.butter(2, 300.0, fs=fs_hz)
    return signal.lfilter(b, a, pulses)


_VOWELS_HZ = {  # (formant, bandwidth) pairs
    "a": ((730.0, 90.0), (1090.0, 110.0), (2440.0, 160.0)),
    "i": ((270.0, 60.0), (2290.0, 100.0), (3010.0, 150.0)),
    "u": ((300.0, 60.0), (870.0, 90.0), (2240.0, 150.0)),
    "e": ((530.0, 80.0), (1840.0, 100.0), (2480.0, 150.0)),
}


def _formants(x: np.ndarray, vowel: str, fs_hz: int) -> np.ndarray:
    """Cascade of two-pole resonators (a vocal tract) plus lip radiation."""
    for f_hz, bw_hz in _VOWELS_HZ[vowel]:
        r = math.exp(-math.pi * bw_hz / fs_hz)
        a = [1.0, -2.0 * r * math.cos(2.0 * math.pi * f_hz / fs_hz), r * r]
        x = signal.lfilter([sum(a)], a, x)
    return signal.lfilter([1.0, -0.95], [1.0], x)


def _vowel(
    vowel: str, f0_hz: np.ndarray, fs_hz: int, rng: np.random.Generator, *, voiced: bool = True
) -> np.ndarray:
    src = _glottal_train(f0_hz, fs_hz) if voiced else rng.standard_normal(len(f0_hz))
    return _formants(src, vowel, fs_hz)


def _ramp(n: int, attack: int, release: int) -> np.ndarray:
    env = np.ones(n)
    env[:attack] = np.linspace(0.0, 1.0, attack)
    env[n - release :] *= np.linspace(1.0, 0.0, release)
    return env


def _cough(rng: np.random.Generator, fs_hz: int = FS_HZ) -> np.ndarray:
    """100 ms of room tone, then a noise burst (2 ms attack, 40 ms decay) through resonances."""
    n = int(0.35 * fs_hz)
    t_s = np.arange(n) / fs_hz
    env = np.exp(-t_s / 0.040) * np.minimum(t_s / 0.002, 1.0)
    burst = rng.standard_normal(n) * env
    out = np.zeros(n)
    for f_hz, bw_hz in ((500.0, 200.0), (1500.0, 300.0), (2600.0, 400.0)):
        b, a = signal.iirpeak(f_hz, Q=f_hz / bw_hz, fs=fs_hz)
        out += signal.lfilter(b, a, burst)
    out += 0.3 * burst  # broadband release
    x = np.concatenate([np.zeros(int(0.1 * fs_hz)), out])
    return _set_level(x, -20.0) + _noise_floor(rng, len(x))


def _vowel_sequence(rng: np.random.Generator, fs_hz: int = FS_HZ) -> np.ndarray:
    """Sustained voiced /a i u e/ with a smooth falling pitch contour: voiced, steady, harmonic."""
    seg = int(0.2 * fs_hz)
    n = 4 * seg
    vibrato = 1.0 + 0.02 * np.sin(2 * np.pi * 3.0 * np.arange(n) / fs_hz)
    f0 = np.linspace(130.0, 110.0, n) * vibrato
    parts = [_vowel(v, f0[i * seg : (i + 1) * seg], fs_hz, rng) for i, v in enumerate("aiue")]
    parts = [p / np.std(p) * _ramp(seg, 80, 80) for p in parts]
    x = np.concatenate([np.zeros(int(0.1 * fs_hz)), *parts])
    return _set_level(x, -20.0) + _noise_floor(rng, len(x))


def _syllables(
    durations_s: Sequence[float],
    f0s_hz: Sequence[tuple[float, float]],
    gaps_s: Sequence[float],
    rng: np.random.Generator,
    *,
    breath_s: float = 0.0,
    vowels: str = "a",
    fs_hz: int = FS_HZ,
) -> np.ndarray:
    """Voiced syllables (pitch gliding start -> end), each optionally led by a breathy /h/."""
    parts = [np.zeros(int(0.1 * fs_hz))]
    for i, (dur_s, (f_start, f_end), gap_s) in enumerate(
        zip(durations_s, f0s_hz, gaps_s, strict=True)
    ):
        vowel = vowels[i % len(vowels)]
        n = int(dur_s * fs_hz)
        v = _vowel(vowel, np.linspace(f_start, f_end, n), fs_hz, rng)
        v = v / np.std(v) * _ramp(n, int(0.015 * fs_hz), int(0.4 * n))
        if breath_s > 0.0:
            nh = int(breath_s * fs_hz)
            h = _vowel(vowel, np.zeros(nh), fs_hz, rng, voiced=False)
            parts.append(0.3 * h / np.std(h) * _ramp(nh, int(0.01 * fs_hz), 1))
        parts.append(v)
        parts.append(np.zeros(int(gap_s * fs_hz)))
    x = np.concatenate(parts)
    return _set_level(x, -20.0) + _noise_floor(rng, len(x))


def _laugh(rng: np.random.Generator) -> np.ndarray:
    """Six "ha" bursts at 5 per second: /h/ 50 ms, voiced /a/ 90 ms, 60 ms gap; pitch jumps."""
    f0s = [(270.0, 250.0), (310.0, 285.0), (235.0, 215.0), (300.0, 280.0), (225.0, 205.0),
           (290.0, 265.0)]  # fmt: skip
    return _syllables([0.09] * 6, f0s, [0.06] * 6, rng, breath_s=0.05)


def _speech_like(rng: np.random.Generator) -> np.ndarray:
    """Continuous voiced syllables of irregular length with a smooth, declining pitch contour."""
    durations = [0.12, 0.28, 0.16, 0.34, 0.2, 0.14, 0.3]
    edges = np.linspace(135.0, 105.0, len(durations) + 1)
    f0s = [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return _syllables(durations, f0s, [0.02] * len(durations), rng, vowels="aeiuae")


def _windows(x: np.ndarray, n: int = WINDOW) -> list[np.ndarray]:
    return [x[i : i + n] for i in range(0, len(x) - n + 1, n)]


def _features(x: np.ndarray, fs_hz: int = FS_HZ) -> list[FrameFeatures]:
    n = int(0.032 * fs_hz)
    return [analyze_window(w, sample_rate_hz=fs_hz) for w in _windows(x, n)]


def _evidence(x: np.ndarray, fs_hz: int = FS_HZ) -> EventEvidence:
    """The whole clip as one event, with a VAD stand-in that fires on anything 20 dB above the
    room tone: the features must tell speech from the rest even when the VAD is fooled."""
    ev = EventEvidence()
    ev.reset(baseline_db=-70.0)
    for f in _features(x, fs_hz):
        ev.push(f, 1.0 if f.level_db > -50.0 else 0.0)
    return ev


# --------------------------------------------------------------------------------------------
# analyze_window


@pytest.mark.parametrize("f0_hz", [120.0, 250.0])
def test_harmonic_complex_is_harmonic_with_the_right_pitch(f0_hz: float) -> None:
    x = _harmonic_complex(f0_hz, 8 * WINDOW, FS_HZ, np.random.default_rng(1))
    for f in _features(x):
        assert f.harmonicity > 0.9
        assert f.pitch_hz is not None and abs(f.pitch_hz / f0_hz - 1.0) < 0.05
        assert f.spectral_flatness < 0.1
        assert f.duration_ms == pytest.approx(32.0)


def test_white_noise_is_not_harmonic_and_flat() -> None:
    x = 0.1 * np.random.default_rng(2).standard_normal(40 * WINDOW)
    feats = _features(x)
    h = np.array([f.harmonicity for f in feats])
    assert np.median(h) < 0.4 and h.max() < 0.6
    assert sum(f.pitch_hz is not None for f in feats) <= 2
    assert all(f.spectral_flatness > 0.4 for f in feats)
    assert np.mean([f.high_band_ratio for f in feats]) == pytest.approx(0.75, abs=0.05)


def test_vowel_vs_its_noise_excited_version() -> None:
    rng = np.random.default_rng(3)
    f0 = np.full(10 * WINDOW, 140.0)
    voiced = _features(0.05 * _vowel("a", f0, FS_HZ, rng))[1:]
    whispered = _features(0.05 * _vowel("a", f0, FS_HZ, rng, voiced=False))[1:]
    assert np.median([f.harmonicity for f in voiced]) > 0.7
    assert np.median([f.harmonicity for f in whispered]) < 0.45
    assert all(f.pitch_hz is not None and abs(f.pitch_hz / 140.0 - 1) < 0.05 for f in voiced)
    assert np.mean([f.spectral_flatness for f in voiced]) < 0.5 * np.mean(
        [f.spectral_flatness for f in whispered]
    )


def test_level_centroid_and_band_ratios_of_pure_tones() -> None:
    t_s = np.arange(WINDOW) / FS_HZ
    low = analyze_window(0.1 * np.sin(2 * np.pi * 150.0 * t_s), sample_rate_hz=FS_HZ)
    high = analyze_window(0.1 * np.sin(2 * np.pi * 3000.0 * t_s), sample_rate_hz=FS_HZ)
    assert low.level_db == pytest.approx(20 * math.log10(0.1 / math.sqrt(2)), abs=0.2)
    assert low.low_band_ratio > 0.95 and low.high_band_ratio < 0.01
    assert high.high_band_ratio > 0.95 and high.low_band_ratio < 0.01
    assert high.spectral_centroid_hz == pytest.approx(3000.0, rel=0.03)


def test_silence_and_dc_are_finite() -> None:
    for x in (np.zeros(WINDOW), np.full(WINDOW, 0.3)):
        f = analyze_window(x, sample_rate_hz=FS_HZ)
        assert f.level_db == -120.0 and f.harmonicity == 0.0 and f.pitch_hz is None
        assert all(math.isfinite(v) for v in (f.spectral_flatness, f.spectral_centroid_hz))


def test_8khz_and_other_window_lengths() -> None:
    rng = np.random.default_rng(4)
    for fs_hz, n in ((8_000, 256), (8_000, 240), (16_000, 480), (48_000, 1536)):
        x = _harmonic_complex(180.0, n, fs_hz, rng)
        f = analyze_window(x, sample_rate_hz=fs_hz)
        assert f.duration_ms == pytest.approx(1000.0 * n / fs_hz)
        assert f.harmonicity > 0.9
        assert f.pitch_hz is not None and abs(f.pitch_hz / 180.0 - 1.0) < 0.05
        noise = analyze_window(0.1 * rng.standard_normal(n), sample_rate_hz=fs_hz)
        assert noise.harmonicity < 0.6 and noise.spectral_flatness > 0.4
    # int16 input and a float32 view give the same answer
    x16 = (_harmonic_complex(120.0, 256, 8_000, rng) * 2**15).astype(np.int16)
    assert analyze_window(x16 / 2**15, sample_rate_hz=8_000).pitch_hz == pytest.approx(
        analyze_window((x16 / 2**15).astype(np.float32), sample_rate_hz=8_000).pitch_hz, rel=1e-3
    )


def test_rejects_bad_windows() -> None:
    with pytest.raises(ValueError):
        analyze_window(np.zeros((2, 256)), sample_rate_hz=FS_HZ)
    with pytest.raises(ValueError):
        analyze_window(np.zeros(8), sample_rate_hz=FS_HZ)


# --------------------------------------------------------------------------------------------
# EventEvidence


def test_evidence_basics_on_a_steady_vowel() -> None:
    ev = EventEvidence()
    ev.reset()
    assert ev.duration_ms == 0.0 and ev.voiced_ratio == 0.0 and ev.pitch_stability is None
    x = 0.05 * _vowel("a", np.full(20 * WINDOW, 120.0), FS_HZ, np.random.default_rng(5))
    for f in _features(x):
        ev.push(f, 0.9)
    assert ev.duration_ms == pytest.approx(20 * 32.0)
    assert ev.voiced_ratio > 0.9 and ev.voiced_ms > 0.9 * ev.duration_ms
    assert ev.pitch_stability == pytest.approx(1.0)
    assert ev.burstiness < 0.2
    assert ev.level_db_p90 == pytest.approx(max(f.level_db for f in _features(x)), abs=1.0)
    speech_like = ev.speech_like_score()
    assert speech_like > 0.8
    # the VAD's say-so is needed for voicing
    ev.reset()
    for f in _features(x):
        ev.push(f, 0.1)
    assert ev.voiced_ms == 0.0 and ev.voiced_ratio == 0.0
    assert ev.speech_like_score() < 0.5 * speech_like


def test_syllable_rate_and_rhythm_of_a_5hz_train() -> None:
    ev = _evidence(_laugh(np.random.default_rng(6)))
    assert ev.syllable_count == 6
    assert ev.syllable_rate_hz == pytest.approx(5.0, rel=0.25)
    assert ev.rhythm_regularity is not None and ev.rhythm_regularity > 0.8


def test_history_is_bounded() -> None:
    ev = EventEvidence()
    f = analyze_window(0.1 * np.random.default_rng(7).standard_normal(WINDOW), sample_rate_hz=FS_HZ)
    for _ in range(1000):  # 32 s
        ev.push(f, 0.0)
    assert ev.duration_ms == pytest.approx(32_000.0)
    assert ev.window_count <= 10_000 / 32 + 1


def test_cough_scores_above_a_vowel_sequence_on_cough_like() -> None:
    rng = np.random.default_rng(8)
    cough, vowels = _evidence(_cough(rng)), _evidence(_vowel_sequence(rng))
    assert cough.cough_like_score() > 0.5
    assert vowels.cough_like_score() < 0.2
    assert cough.burstiness > vowels.burstiness + 0.3
    assert vowels.speech_like_score() > cough.speech_like_score() + 0.3


def test_laugh_scores_above_continuous_speech_like_voicing_on_laugh_like() -> None:
    rng = np.random.default_rng(9)
    laugh, speech = _evidence(_laugh(rng)), _evidence(_speech_like(rng))
    assert laugh.laugh_like_score() > 0.5
    assert speech.laugh_like_score() < 0.25
    assert laugh.laugh_like_score() > speech.laugh_like_score() + 0.3
    assert speech.speech_like_score() > laugh.speech_like_score()
    assert speech.pitch_stability is not None and laugh.pitch_stability is not None
    assert speech.pitch_stability > laugh.pitch_stability


@pytest.fixture(scope="module")
def piper_speech() -> np.ndarray:
    pytest.importorskip("piper")
    from livekit_bargein.eval.piper_voice import PiperSpeaker

    audio = (
        PiperSpeaker.load()
        .synthesize(
            "Wait, stop, that is not what I asked for.", out_rate_hz=FS_HZ, deterministic=True
        )
        .audio
    )
    x = _set_level(np.asarray(audio, dtype=np.float64), -20.0)
    return x + _noise_floor(np.random.default_rng(10), len(x))


def test_real_speech_beats_synthetic_cough_and_laugh_on_speech_like(
    piper_speech: np.ndarray,
) -> None:
    rng = np.random.default_rng(11)
    speech = _evidence(piper_speech)
    cough, laugh = _evidence(_cough(rng)), _evidence(_laugh(rng))
    assert speech.speech_like_score() > 0.5
    assert speech.speech_like_score() > cough.speech_like_score() + 0.3
    assert speech.speech_like_score() > laugh.speech_like_score() + 0.2
    assert speech.cough_like_score() < cough.cough_like_score()
    assert speech.laugh_like_score() < laugh.laugh_like_score()


def test_real_speech_at_8khz_telephone_band(piper_speech: np.ndarray) -> None:
    # 300-3400 Hz: the fundamental is gone, its harmonics still carry the period
    sos = signal.butter(4, [300.0, 3400.0], btype="bandpass", fs=8_000, output="sos")
    narrow = signal.sosfilt(sos, signal.resample_poly(piper_speech, 1, 2))
    cough = signal.sosfilt(sos, signal.resample_poly(_cough(np.random.default_rng(13)), 1, 2))
    ev, ev_cough = _evidence(narrow, 8_000), _evidence(cough, 8_000)
    assert ev.speech_like_score() > 0.5
    assert ev.cough_like_score() < 0.2
    assert ev_cough.cough_like_score() > 0.5 and ev_cough.speech_like_score() < 0.2


def test_vocal_sounds_from_the_scenario_generator(piper_speech: np.ndarray) -> None:
    sounds = pytest.importorskip("livekit_bargein.eval.sounds")
    speech = _evidence(piper_speech).speech_like_score()

    def ev(kind: str, seed: int) -> EventEvidence:
        x = getattr(sounds, kind)(np.random.default_rng(seed)).astype(np.float64)
        return _evidence(_set_level(x, -20.0) + _noise_floor(np.random.default_rng(seed), len(x)))

    for seed in range(3):
        coughs, laughs = ev("cough", seed), ev("laugh", seed)
        assert coughs.cough_like_score() > 0.3
        assert laughs.laugh_like_score() > 0.5
        for kind in ("cough", "laugh", "throat_clear", "breath"):
            assert ev(kind, seed).speech_like_score() < speech - 0.2, (kind, seed)


# --------------------------------------------------------------------------------------------
# LevelTracker


def test_noise_floor_follows_steps_and_ignores_short_loud_events() -> None:
    tracker = LevelTracker()
    rng = np.random.default_rng(12)
    windows_per_s = 1000 / 32

    def run(level_db: float, seconds: float) -> None:
        for _ in range(int(seconds * windows_per_s)):
            tracker.push(level_db + rng.normal(0.0, 1.0))

    assert tracker.noise_floor_db is None
    run(-60.0, 6.0)
    assert tracker.noise_floor_db == pytest.approx(-61.3, abs=1.0)  # 10th percentile of N(-60, 1)
    run(-20.0, 1.5)  # someone talks for 1.5 s
    assert tracker.noise_floor_db == pytest.approx(-61.0, abs=1.5)
    run(-60.0, 6.0)
    run(-40.0, 5.0)  # the room gets louder: followed within 5 s
    assert tracker.noise_floor_db == pytest.approx(-41.3, abs=1.5)
    run(-60.0, 1.0)  # and quieter again: followed within 1 s
    assert tracker.noise_floor_db == pytest.approx(-61.0, abs=2.0)
    assert tracker.above_noise_db(-30.0) == pytest.approx(30.0, abs=2.0)


def test_background_is_the_loud_end_of_a_steady_background_only() -> None:
    tracker = LevelTracker()
    rng = np.random.default_rng(3)
    babble = [-42.0 + rng.normal(0.0, 3.0) for _ in range(125)]  # 4 s of babble, +-3 dB
    for level in babble[:61]:  # under half the history: not known yet
        tracker.push_background(level)
    assert tracker.background_db is None
    for level in babble[61:]:
        tracker.push_background(level)
    assert tracker.background_db == pytest.approx(np.percentile(babble, 90), abs=0.5)
    # An echo leaking in bursts (-20 dBFS, then AEC3 silence) is not a steady background:
    # the echo gates judge that, this gate stays out of the way.
    bursts = LevelTracker()
    for i in range(125):
        bursts.push_background(-20.0 if i % 4 == 0 else -90.0)
    assert bursts.background_db is None


def test_speech_level_needs_enough_speech_then_is_the_median() -> None:
    tracker = LevelTracker(LevelTrackerOptions(window_ms=32.0, min_speech_ms=500.0))
    for i in range(15):  # 480 ms
        tracker.push_speech(-30.0 + (i % 5) - 2)
    assert tracker.speech_level_db is None and tracker.relative_to_speech_db(-30.0) is None
    tracker.push_speech(-30.0)
    assert tracker.speech_level_db == pytest.approx(-30.0)
    assert tracker.relative_to_speech_db(-45.0) == pytest.approx(-15.0)
    assert tracker.speech_percentile_db(90.0) == pytest.approx(-28.0, abs=0.5)
    for _ in range(2000):  # bounded history: old speech ages out
        tracker.push_speech(-20.0)
    assert tracker.speech_level_db == pytest.approx(-20.0)
