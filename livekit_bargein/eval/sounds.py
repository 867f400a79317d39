"""Synthetic near-end events for the bundled scenario set: vocal sounds, noises, rooms and levels.

Every generator takes a seeded ``np.random.Generator`` (never the global RNG) and returns float32
mono at 16 kHz with a peak of at most 0.9; levels are set later with :func:`set_active_level`.
Recipes follow shared/research/offline.md ("Non-speech vocal events"): noise or a glottal pulse
train shaped by vowel-like resonances and envelopes, varied per seed in duration, pitch, formants
and count.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from scipy import signal

SAMPLE_RATE_HZ = 16_000
_PEAK = 0.9

VOCAL_EVENTS: tuple[str, ...] = ("cough", "laugh", "throat_clear", "sneeze", "breath")
NOISE_EVENTS: tuple[str, ...] = ("door_knock", "keyboard", "phone_ring", "dog_bark", "music")

AMBIENCE_BEDS: tuple[str, ...] = (
    "city-ambience.ogg",
    "crowded-room.ogg",
    "forest-ambience.ogg",
    "office-ambience.ogg",
    "keyboard-typing.ogg",
)
"""Recordings shipped in ``livekit.agents.resources`` that work as background beds."""


# --------------------------------------------------------------------------------------------
# building blocks


def _n(duration_s: float, sample_rate_hz: int = SAMPLE_RATE_HZ) -> int:
    return max(1, int(round(duration_s * sample_rate_hz)))


def _band_noise(
    rng: np.random.Generator, n_samples: int, lo_hz: float, hi_hz: float, sample_rate_hz: int
) -> np.ndarray:
    sos = signal.butter(4, [lo_hz, hi_hz], btype="bandpass", fs=sample_rate_hz, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(n_samples))


def _resonate(
    x: np.ndarray,
    formants_hz: Sequence[float],
    bandwidths_hz: Sequence[float],
    gains: Sequence[float],
    sample_rate_hz: int,
) -> np.ndarray:
    """Parallel second-order resonators: a cheap vocal-tract model (formants)."""
    out = np.zeros(len(x))
    nyq_hz = sample_rate_hz / 2
    for f_hz, bw_hz, g in zip(formants_hz, bandwidths_hz, gains, strict=True):
        f_hz = min(f_hz, nyq_hz * 0.95)
        b, a = signal.iirpeak(f_hz, Q=f_hz / bw_hz, fs=sample_rate_hz)
        out += g * signal.lfilter(b, a, x)
    return out


def _glottal_source(
    rng: np.random.Generator,
    f0_hz: np.ndarray,
    sample_rate_hz: int,
    *,
    jitter: float = 0.01,
    shimmer: float = 0.05,
) -> np.ndarray:
    """A pulse train following the per-sample pitch contour ``f0_hz``, with the glottal roll-off.

    ``jitter`` and ``shimmer`` are the relative period and amplitude variation per pulse: small for
    modal voice, large for creak.
    """
    n = len(f0_hz)
    pulses = np.zeros(n)
    t = 0.0
    while t < n:
        i = int(t)
        pulses[i] = 1.0 + shimmer * rng.standard_normal()
        period = sample_rate_hz / max(f0_hz[i], 20.0)
        t += period * (1.0 + jitter * rng.standard_normal())
    # A glottal pulse is smooth: ~ -12 dB/octave above a few hundred Hz.
    sos = signal.butter(2, 500.0, btype="lowpass", fs=sample_rate_hz, output="sos")
    return signal.sosfilt(sos, pulses)


def _radiate(x: np.ndarray) -> np.ndarray:
    """Lip radiation: +6 dB/octave (first difference)."""
    return signal.lfilter([1.0, -0.95], [1.0], x)


def _ramp_envelope(
    n_samples: int, attack_s: float, release_s: float, sample_rate_hz: int
) -> np.ndarray:
    """Raised-cosine attack and release around a flat middle."""
    env = np.ones(n_samples)
    n_att = min(n_samples, int(round(attack_s * sample_rate_hz)))
    n_rel = min(n_samples - n_att, int(round(release_s * sample_rate_hz)))
    if n_att:
        env[:n_att] = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n_att))
    if n_rel > 0:
        env[n_samples - n_rel :] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, n_rel))
    return env


def _decay_envelope(
    n_samples: int, attack_s: float, tau_s: float, sample_rate_hz: int
) -> np.ndarray:
    """Fast linear attack then exponential decay (time constant ``tau_s``)."""
    t_s = np.arange(n_samples) / sample_rate_hz
    env = np.exp(-t_s / tau_s)
    n_att = min(n_samples, _n(attack_s, sample_rate_hz))
    env[:n_att] *= np.linspace(0.0, 1.0, n_att)
    # Close smoothly so truncation does not click.
    n_tail = min(n_samples, _n(0.005, sample_rate_hz))
    env[n_samples - n_tail :] *= np.linspace(1.0, 0.0, n_tail)
    return env


def _place(parts: list[tuple[int, np.ndarray]], n_samples: int | None = None) -> np.ndarray:
    """Sum ``(offset_samples, audio)`` parts into one buffer."""
    end = max(off + len(x) for off, x in parts)
    out = np.zeros(max(end, n_samples or 0))
    for off, x in parts:
        out[off : off + len(x)] += x
    return out


def _finish(x: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Remove DC/rumble, normalise the peak to ``_PEAK``."""
    sos = signal.butter(2, 50.0, btype="highpass", fs=sample_rate_hz, output="sos")
    x = signal.sosfilt(sos, x)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 0:
        x = x * (_PEAK / peak)
    return x.astype(np.float32)


def _jitter(rng: np.random.Generator, values_hz: Sequence[float], rel: float) -> list[float]:
    return [float(v * rng.uniform(1.0 - rel, 1.0 + rel)) for v in values_hz]


# --------------------------------------------------------------------------------------------
# vocal events


def cough(rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """A bout of 1-3 coughs: a 30-50 ms burst, then 120-250 ms of decaying vowel-like noise."""
    sr = sample_rate_hz
    formants_hz = _jitter(rng, (700.0, 1200.0, 2600.0), 0.15)
    bandwidths_hz = _jitter(rng, (130.0, 160.0, 250.0), 0.25)
    f0_hz = rng.uniform(120.0, 240.0)
    n_coughs = int(rng.integers(1, 4))
    parts: list[tuple[int, np.ndarray]] = []
    pos = 0
    level = 1.0
    for _ in range(n_coughs):
        burst_s = rng.uniform(0.030, 0.050)
        tail_s = rng.uniform(0.120, 0.250)
        n_burst, n_tail = _n(burst_s, sr), _n(tail_s, sr)
        # Glottal release: broadband, attack of 1-3 ms (the "sharp onset" that trips VADs).
        burst = _band_noise(rng, n_burst, 200.0, 7000.0, sr)
        burst *= _decay_envelope(n_burst, rng.uniform(0.001, 0.003), burst_s * 0.6, sr)
        # Turbulent airflow through an open vocal tract, with a little voicing.
        noise = rng.standard_normal(n_tail)
        voice = _glottal_source(
            rng, np.full(n_tail, f0_hz * rng.uniform(0.9, 1.1)), sr, jitter=0.05
        )
        source = noise + rng.uniform(0.0, 6.0) * voice
        tail = _resonate(source, formants_hz, bandwidths_hz, (1.0, 0.7, 0.35), sr)
        tail *= _decay_envelope(n_tail, 0.004, tail_s * rng.uniform(0.3, 0.5), sr)
        tail *= np.std(burst) / (np.std(tail[: n_tail // 3]) + 1e-12) * rng.uniform(0.5, 0.8)
        event = np.concatenate([burst, tail])
        parts.append((pos, level * event))
        pos += len(event) + _n(rng.uniform(0.10, 0.30), sr)
        level *= rng.uniform(0.55, 0.9)  # later coughs of a bout are weaker
    return _finish(_place(parts), sr)


def laugh(rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """4-8 "ha" syllables at ~5 per second: breathy /h/ then voiced /a/ at 220-320 Hz, falling."""
    sr = sample_rate_hz
    n_syll = int(rng.integers(4, 9))
    rate_hz = rng.uniform(4.3, 5.8)
    f0_start_hz = rng.uniform(220.0, 320.0)
    f0_fall = rng.uniform(0.15, 0.35)  # relative pitch drop over the bout
    formants_hz = _jitter(rng, (800.0, 1250.0, 2700.0, 3500.0), 0.12)
    bandwidths_hz = _jitter(rng, (90.0, 110.0, 170.0, 250.0), 0.2)
    gains = (1.0, 0.8, 0.4, 0.2)
    # Laughter is much breathier than speech, with short voiced nuclei: a modal, long /a/ makes
    # Silero hear continuous speech, which real laughs rarely do.
    breathiness = rng.uniform(0.6, 1.5)
    h_amp = rng.uniform(0.6, 1.0)
    parts: list[tuple[int, np.ndarray]] = []
    pos = 0
    for k in range(n_syll):
        period_s = (1.0 / rate_hz) * rng.uniform(0.9, 1.1)
        h_s = period_s * rng.uniform(0.18, 0.3)
        a_s = period_s * rng.uniform(0.25, 0.4)
        n_h, n_a = _n(h_s, sr), _n(a_s, sr)
        progress = k / max(1, n_syll - 1)
        f0_hz = f0_start_hz * (1.0 - f0_fall * progress)
        # Within a syllable the pitch also drops a little.
        contour_hz = np.linspace(f0_hz * 1.04, f0_hz * 0.92, n_a)
        voiced = _glottal_source(rng, contour_hz, sr, jitter=0.015, shimmer=0.08)
        voiced = voiced / (np.std(voiced) + 1e-12) + breathiness * rng.standard_normal(n_a)
        h = rng.standard_normal(n_h) * h_amp
        syll = _resonate(np.concatenate([h, voiced]), formants_hz, bandwidths_hz, gains, sr)
        syll *= _ramp_envelope(len(syll), 0.015, a_s * 0.5, sr)
        amp = (1.0 - 0.5 * progress) * rng.uniform(0.8, 1.0)
        parts.append((pos, amp * syll))
        pos += _n(period_s, sr)
    return _finish(_radiate(_place(parts)), sr)


def throat_clear(rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """An "ahem": creaky low pitch (70-110 Hz, irregular pulses) plus low-band turbulence."""
    sr = sample_rate_hz
    formants_hz = _jitter(rng, (500.0, 1400.0, 2400.0), 0.15)
    bandwidths_hz = _jitter(rng, (120.0, 180.0, 260.0), 0.2)
    n_parts = int(rng.integers(1, 3))
    parts: list[tuple[int, np.ndarray]] = []
    pos = 0
    for k in range(n_parts):
        dur_s = rng.uniform(0.25, 0.5) if k == n_parts - 1 else rng.uniform(0.12, 0.22)
        n = _n(dur_s, sr)
        f0_hz = rng.uniform(70.0, 110.0)
        contour_hz = np.linspace(f0_hz * rng.uniform(0.95, 1.1), f0_hz * rng.uniform(0.8, 0.95), n)
        creak = _glottal_source(rng, contour_hz, sr, jitter=0.12, shimmer=0.35)
        creak /= np.std(creak) + 1e-12
        rasp = _band_noise(rng, n, 100.0, rng.uniform(800.0, 1300.0), sr)
        rasp /= np.std(rasp) + 1e-12
        source = creak + rng.uniform(0.4, 1.0) * rasp
        seg = _resonate(source, formants_hz, bandwidths_hz, (1.0, 0.5, 0.2), sr)
        seg *= _ramp_envelope(n, rng.uniform(0.01, 0.03), dur_s * 0.4, sr)
        parts.append((pos, seg))
        pos += n + _n(rng.uniform(0.04, 0.12), sr)
    return _finish(_radiate(_place(parts)), sr)


def sneeze(rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """A short breathy "ah" inhale with rising pitch, a closure, then a sharp broadband "choo"."""
    sr = sample_rate_hz
    inhale_s = rng.uniform(0.2, 0.45)
    n_in = _n(inhale_s, sr)
    f0_hz = rng.uniform(180.0, 300.0)
    contour_hz = np.linspace(f0_hz, f0_hz * rng.uniform(1.2, 1.5), n_in)
    voice = _glottal_source(rng, contour_hz, sr, jitter=0.02)
    voice /= np.std(voice) + 1e-12
    source = rng.uniform(0.3, 1.0) * voice + rng.standard_normal(n_in)
    inhale = _resonate(
        source,
        _jitter(rng, (750.0, 1300.0, 2600.0), 0.1),
        (120.0, 150.0, 250.0),
        (1.0, 0.6, 0.3),
        sr,
    )
    # Crescendo: the inhale builds up to the explosion.
    inhale *= np.linspace(0.05, 1.0, n_in) ** 2 * _ramp_envelope(n_in, 0.02, 0.02, sr)
    inhale /= np.max(np.abs(inhale)) + 1e-12

    burst_s = rng.uniform(0.12, 0.3)
    n_burst = _n(burst_s, sr)
    hiss = _band_noise(rng, n_burst, rng.uniform(800.0, 1500.0), 7500.0, sr)
    hiss += _resonate(
        rng.standard_normal(n_burst),
        _jitter(rng, (350.0, 900.0, 2300.0), 0.15),
        (100.0, 150.0, 250.0),
        (0.8, 0.4, 0.2),
        sr,
    )
    hiss *= _decay_envelope(n_burst, rng.uniform(0.001, 0.004), burst_s * 0.35, sr)
    hiss /= np.max(np.abs(hiss)) + 1e-12
    gap = _n(rng.uniform(0.03, 0.1), sr)
    return _finish(_place([(0, rng.uniform(0.2, 0.45) * inhale), (n_in + gap, hiss)]), sr)


def breath(rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """A slow inhale and/or exhale: band-limited noise with smooth envelopes, close to the mic."""
    sr = sample_rate_hz
    kind = int(rng.integers(0, 3))  # 0: inhale+exhale, 1: inhale only, 2: exhale only
    parts: list[tuple[int, np.ndarray]] = []
    pos = 0
    if kind in (0, 1):
        n = _n(rng.uniform(0.45, 0.9), sr)
        inhale = _band_noise(rng, n, rng.uniform(400.0, 700.0), rng.uniform(2500.0, 4000.0), sr)
        inhale *= signal.windows.tukey(n, rng.uniform(0.6, 0.95))
        parts.append((pos, inhale / (np.std(inhale) + 1e-12)))
        pos += n + _n(rng.uniform(0.1, 0.35), sr)
    if kind in (0, 2):
        n = _n(rng.uniform(0.5, 1.1), sr)
        exhale = _band_noise(rng, n, rng.uniform(150.0, 300.0), rng.uniform(1200.0, 2200.0), sr)
        exhale *= signal.windows.tukey(n, rng.uniform(0.6, 0.95)) * np.linspace(1.0, 0.4, n)
        parts.append((pos, rng.uniform(0.5, 1.0) * exhale / (np.std(exhale) + 1e-12)))
    return _finish(_place(parts), sr)


# --------------------------------------------------------------------------------------------
# noise events


def door_knock(rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """2-5 knocks on a wooden door: short impacts exciting a few damped panel modes."""
    sr = sample_rate_hz
    modes_hz = sorted(rng.uniform(90.0, 450.0, size=3)) + list(rng.uniform(700.0, 2200.0, size=2))
    taus_s = list(rng.uniform(0.02, 0.07, size=3)) + list(rng.uniform(0.005, 0.015, size=2))
    n_knocks = int(rng.integers(2, 6))
    interval_s = rng.uniform(0.14, 0.3)
    n_knock = _n(0.25, sr)
    t_s = np.arange(n_knock) / sr
    parts: list[tuple[int, np.ndarray]] = []
    pos = 0
    for k in range(n_knocks):
        knock = np.zeros(n_knock)
        for f_hz, tau_s in zip(modes_hz, taus_s, strict=True):
            phase = rng.uniform(0, 2 * np.pi)
            knock += (
                rng.uniform(0.5, 1.0)
                * np.exp(-t_s / tau_s)
                * np.sin(2 * np.pi * f_hz * t_s + phase)
            )
        click = _band_noise(rng, _n(0.004, sr), 1000.0, 6000.0, sr) * rng.uniform(0.3, 1.0)
        knock[: len(click)] += click
        knock *= _decay_envelope(n_knock, 0.0005, 0.08, sr)
        amp = rng.uniform(0.7, 1.0) * (1.1 if k == n_knocks - 1 else 1.0)
        parts.append((pos, amp * knock))
        pos += _n(interval_s * rng.uniform(0.85, 1.15), sr)
    return _finish(_place(parts), sr)


def keyboard(rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """1.5-4 s of typing cut from the keyboard recordings shipped with livekit-agents."""
    name = ("keyboard-typing.ogg", "keyboard-typing2.ogg")[int(rng.integers(0, 2))]
    return _cut(
        rng,
        load_ambience(name, sample_rate_hz=sample_rate_hz),
        rng.uniform(1.5, 4.0),
        sample_rate_hz,
    )


def music(rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """2-5 s of the hold music shipped with livekit-agents (a radio or a phone playing nearby)."""
    src = load_ambience("hold_music.ogg", sample_rate_hz=sample_rate_hz)
    return _cut(rng, src, rng.uniform(2.0, 5.0), sample_rate_hz)


def phone_ring(rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """A landline dual-tone ring or a mobile trill, 1.5-4 s, through a small loudspeaker."""
    sr = sample_rate_hz
    total_s = rng.uniform(1.5, 4.0)
    n = _n(total_s, sr)
    t_s = np.arange(n) / sr
    if rng.random() < 0.5:
        f1_hz, f2_hz = ((440.0, 480.0), (400.0, 450.0), (425.0, 425.0))[int(rng.integers(0, 3))]
        tone = np.sin(2 * np.pi * f1_hz * t_s) + np.sin(2 * np.pi * f2_hz * t_s)
        on_s, off_s = (rng.uniform(0.35, 0.45), rng.uniform(0.15, 0.25))
        if rng.random() < 0.5:  # one long ring instead of the double cadence
            on_s, off_s = rng.uniform(0.9, 1.6), rng.uniform(0.5, 1.0)
    else:
        f1_hz = rng.uniform(900.0, 1400.0)
        f2_hz = f1_hz * rng.uniform(1.15, 1.35)
        trill_hz = rng.uniform(12.0, 20.0)
        square = signal.square(2 * np.pi * trill_hz * t_s)
        freq_hz = np.where(square > 0, f1_hz, f2_hz)
        phase = 2 * np.pi * np.cumsum(freq_hz) / sr
        tone = signal.square(phase, duty=0.5) * 0.3 + np.sin(phase)
        on_s, off_s = rng.uniform(0.6, 1.2), rng.uniform(0.3, 0.6)
    cycle_s = on_s + off_s
    gate = ((t_s % cycle_s) < on_s).astype(np.float64)
    # Smooth the gate so the on/off edges do not click.
    gate = signal.sosfiltfilt(signal.butter(2, 60.0, fs=sr, output="sos"), gate)
    sos = signal.butter(
        2,
        [rng.uniform(250.0, 450.0), rng.uniform(3000.0, 5000.0)],
        btype="bandpass",
        fs=sr,
        output="sos",
    )
    return _finish(signal.sosfilt(sos, tone * gate) * _ramp_envelope(n, 0.01, 0.02, sr), sr)


def dog_bark(rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """1-4 barks: harsh harmonic bursts (f0 350-700 Hz, rising then falling) with noise."""
    sr = sample_rate_hz
    formants_hz = _jitter(rng, (900.0, 1800.0, 3000.0), 0.2)
    f0_base_hz = rng.uniform(350.0, 700.0)
    n_barks = int(rng.integers(1, 5))
    parts: list[tuple[int, np.ndarray]] = []
    pos = 0
    for _ in range(n_barks):
        dur_s = rng.uniform(0.1, 0.25)
        n = _n(dur_s, sr)
        f0_hz = f0_base_hz * rng.uniform(0.9, 1.1)
        peak_at = rng.uniform(0.15, 0.35)
        u = np.linspace(0.0, 1.0, n)
        contour_hz = f0_hz * np.where(
            u < peak_at, 0.8 + 0.2 * u / peak_at, 1.0 - 0.35 * (u - peak_at) / (1 - peak_at)
        )
        voice = _glottal_source(rng, contour_hz, sr, jitter=0.04, shimmer=0.2)
        voice /= np.std(voice) + 1e-12
        source = voice + rng.uniform(0.3, 0.8) * rng.standard_normal(n)
        bark = _resonate(source, formants_hz, (200.0, 300.0, 400.0), (1.0, 0.8, 0.4), sr)
        bark *= _decay_envelope(n, 0.006, dur_s * 0.5, sr)
        parts.append((pos, rng.uniform(0.7, 1.0) * bark))
        pos += n + _n(rng.uniform(0.15, 0.5), sr)
    return _finish(_radiate(_place(parts)), sr)


GENERATORS: dict[str, Callable[..., np.ndarray]] = {
    "cough": cough,
    "laugh": laugh,
    "throat_clear": throat_clear,
    "sneeze": sneeze,
    "breath": breath,
    "door_knock": door_knock,
    "keyboard": keyboard,
    "phone_ring": phone_ring,
    "dog_bark": dog_bark,
    "music": music,
}


def synthesize_event(
    kind: str, rng: np.random.Generator, *, sample_rate_hz: int = SAMPLE_RATE_HZ
) -> np.ndarray:
    """One event of ``kind`` (a key of :data:`GENERATORS`)."""
    try:
        gen = GENERATORS[kind]
    except KeyError:
        raise ValueError(
            f"unknown event {kind!r} (expected one of {', '.join(GENERATORS)})"
        ) from None
    return gen(rng, sample_rate_hz=sample_rate_hz)


# --------------------------------------------------------------------------------------------
# recordings shipped with livekit-agents


@lru_cache(maxsize=8)
def _load_ambience_cached(name: str, sample_rate_hz: int) -> np.ndarray:
    import soundfile as sf
    import soxr

    res = importlib.resources.files("livekit.agents.resources") / name
    with importlib.resources.as_file(res) as path:
        data, rate_hz = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate_hz != sample_rate_hz:
        mono = soxr.resample(mono, rate_hz, sample_rate_hz)
    out = np.ascontiguousarray(mono, dtype=np.float32)
    out.setflags(write=False)  # shared by the cache
    return out


def load_ambience(name: str, *, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """A recording of ``livekit.agents.resources`` (``"office-ambience.ogg"``...), mono, resampled.

    The returned array is read-only (it is cached); copy it before modifying.
    """
    return _load_ambience_cached(name, sample_rate_hz)


def _cut(
    rng: np.random.Generator, src: np.ndarray, duration_s: float, sample_rate_hz: int
) -> np.ndarray:
    n = min(len(src), _n(duration_s, sample_rate_hz))
    start = int(rng.integers(0, len(src) - n + 1))
    seg = np.array(src[start : start + n], dtype=np.float64)
    seg *= _ramp_envelope(n, 0.02, 0.05, sample_rate_hz)
    return _finish(seg, sample_rate_hz)


def ambience_bed(
    rng: np.random.Generator,
    name: str,
    *,
    duration_s: float,
    crossfade_s: float = 0.5,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
) -> np.ndarray:
    """A segment of an ambience recording, its end crossfaded into its start (loops seamlessly)."""
    src = load_ambience(name, sample_rate_hz=sample_rate_hz)
    n = _n(duration_s, sample_rate_hz)
    n_xf = _n(crossfade_s, sample_rate_hz)
    if len(src) < n + n_xf:
        n = max(n_xf + 1, len(src) - n_xf)
    start = int(rng.integers(0, len(src) - n - n_xf + 1))
    seg = np.array(src[start : start + n + n_xf], dtype=np.float64)
    fade_in = np.sin(np.linspace(0.0, np.pi / 2, n_xf)) ** 2
    out = seg[:n].copy()
    # The last n_xf samples (that would follow sample n-1) are blended into the beginning.
    out[:n_xf] = seg[:n_xf] * fade_in + seg[n : n + n_xf] * (1.0 - fade_in)
    return _finish(out, sample_rate_hz)


# --------------------------------------------------------------------------------------------
# rooms and levels


def room_rir(
    rng: np.random.Generator,
    *,
    rt60_s: float,
    distance_m: float,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
) -> np.ndarray:
    """Impulse response of a random shoebox room (pyroomacoustics image method, Sabine absorption).

    The direct path is moved to sample 0 (so convolving does not delay the signal) and the response
    is normalised to unit energy (so convolving keeps the level of a broadband signal).
    """
    import pyroomacoustics as pra

    # Larger rooms for longer reverberation, so the absorption Sabine asks for stays physical.
    scale = float(np.clip(0.6 + rt60_s, 0.75, 1.6))
    for _ in range(20):
        room_dim = [
            rng.uniform(3.0, 5.0) * scale,
            rng.uniform(2.6, 4.0) * scale,
            rng.uniform(2.4, 3.0),
        ]
        try:
            e_absorption, max_order = pra.inverse_sabine(rt60_s, room_dim)
        except ValueError:
            scale *= 0.85  # absorption > 1 needed: the room is too large for this RT60
            continue
        # A source `distance_m` away from the mic, both inside the room with a 0.3 m clearance.
        mic = np.array([rng.uniform(0.3, d - 0.3) for d in room_dim[:2]] + [rng.uniform(1.0, 1.6)])
        for _ in range(50):
            az = rng.uniform(0, 2 * np.pi)
            el = rng.uniform(-0.3, 0.3)
            src = mic + distance_m * np.array(
                [np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)]
            )
            if all(0.3 <= src[i] <= room_dim[i] - 0.3 for i in range(3)):
                break
        else:
            scale *= 1.15  # the distance does not fit: try a larger room
            continue
        room = pra.ShoeBox(
            room_dim, fs=sample_rate_hz, materials=pra.Material(e_absorption), max_order=max_order
        )
        room.add_source(src.tolist())
        room.add_microphone(mic.tolist())
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)
        # Direct path at sample 0: the simulator delays it by the flight time plus half its
        # fractional-delay filter (documented as the "global delay").
        direct_s = float(np.linalg.norm(src - mic)) / room.c
        direct = int(round(direct_s * sample_rate_hz)) + pra.constants.get("frac_delay_length") // 2
        rir = rir[direct:]
        # Tail below -60 dB of the direct path is inaudible: drop it to keep files and FFTs small.
        n_keep = min(len(rir), _n(rt60_s * 1.2, sample_rate_hz))
        rir = rir[:n_keep] * _ramp_envelope(n_keep, 0.0, 0.01, sample_rate_hz)
        rir /= np.sqrt(np.sum(rir**2))
        return rir.astype(np.float32)
    raise ValueError(f"could not fit rt60_s={rt60_s} and distance_m={distance_m} in a room")


def convolve(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` through the room ``rir``, reverb tail included (length ``len(x) + len(rir) - 1``)."""
    return signal.oaconvolve(x.astype(np.float64), rir.astype(np.float64)).astype(np.float32)


def frame_rms_dbfs(
    x: np.ndarray, *, frame_ms: float = 10.0, sample_rate_hz: int = SAMPLE_RATE_HZ
) -> np.ndarray:
    """RMS level of consecutive frames, in dBFS (a full-scale sine is -3 dBFS)."""
    n = _n(frame_ms / 1000.0, sample_rate_hz)
    n_frames = len(x) // n
    if n_frames == 0:
        return np.full(1, -120.0)
    frames = x[: n_frames * n].astype(np.float64).reshape(n_frames, n)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def active_rms_dbfs(
    x: np.ndarray,
    *,
    range_db: float = 35.0,
    floor_dbfs: float = -80.0,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
) -> float:
    """RMS level of the active part of ``x``: 10 ms frames within ``range_db`` of the loudest."""
    levels_db = frame_rms_dbfs(x, sample_rate_hz=sample_rate_hz)
    active = levels_db >= max(float(levels_db.max()) - range_db, floor_dbfs)
    if not np.any(active):
        return -120.0
    return float(10.0 * np.log10(np.mean(10.0 ** (levels_db[active] / 10.0))))


def set_active_level(
    x: np.ndarray, target_dbfs: float, *, sample_rate_hz: int = SAMPLE_RATE_HZ
) -> np.ndarray:
    """Scale ``x`` so its active RMS level is ``target_dbfs``."""
    level_db = active_rms_dbfs(x, sample_rate_hz=sample_rate_hz)
    if level_db <= -120.0:
        return x.astype(np.float32)
    return (x * 10.0 ** ((target_dbfs - level_db) / 20.0)).astype(np.float32)


def limit_peak(x: np.ndarray, peak: float = 0.98) -> np.ndarray:
    """Scale down (never up) so ``max|x| <= peak``: no clipping when writing PCM."""
    cur = float(np.max(np.abs(x))) if len(x) else 0.0
    return (x * (peak / cur)).astype(np.float32) if cur > peak else x.astype(np.float32)


def room_tone(
    rng: np.random.Generator,
    n_samples: int,
    *,
    level_dbfs: float,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
) -> np.ndarray:
    """A quiet, steady, low-heavy noise floor (HVAC, mic self-noise) at ``level_dbfs`` RMS."""
    white = rng.standard_normal(n_samples)
    corner_hz = rng.uniform(300.0, 900.0)
    low = signal.sosfilt(signal.butter(1, corner_hz, fs=sample_rate_hz, output="sos"), white)
    tone = low / (np.std(low) + 1e-12) + rng.uniform(0.05, 0.3) * white
    tone /= np.sqrt(np.mean(tone**2)) + 1e-12
    return (tone * 10.0 ** (level_dbfs / 20.0)).astype(np.float32)
