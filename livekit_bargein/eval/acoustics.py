"""The acoustic path from the loudspeaker to the microphone, one 10 ms tick at a time.

mic = echo(played) + user event (placed sample-exactly once t = 0 is known) + noise bed, then the
channel: wideband passes as is, telephony is band-limited to 300-3400 Hz and G.711 mu-law coded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from .manifest import Scenario

_NOMINAL_SPEECH_DBFS = -26.0
"""Level assumed for SNR when a scenario has no user event (echo_only): a typical talker."""


def load_mono(path: Path, *, sample_rate_hz: int) -> np.ndarray:
    """Read any soundfile-readable file, mix to mono, resample (soxr) to ``sample_rate_hz``."""
    import soundfile as sf
    import soxr

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types; name the file in one message
        raise ValueError(f"cannot read audio file {path}: {e}") from e
    if data.shape[0] == 0:
        raise ValueError(f"audio file {path} is empty")
    mono = data.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise ValueError(f"audio file {path} contains NaN or infinite samples")
    if rate != sample_rate_hz:
        mono = soxr.resample(mono, rate, sample_rate_hz, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def active_rms(x: np.ndarray, *, sample_rate_hz: int) -> float:
    """RMS over the active 20 ms frames (within 30 dB of the loudest): an active speech level."""
    hop = sample_rate_hz // 50
    n = len(x) // hop
    if n == 0:
        return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
    frames = x[: n * hop].reshape(n, hop)
    e = np.mean(frames**2, axis=1)
    if e.max() <= 0:
        return 0.0
    active = e[e >= e.max() * 1e-3]
    return float(np.sqrt(active.mean()))


def active_span(x: np.ndarray, *, sample_rate_hz: int) -> tuple[int, int]:
    """First and last sample of 10 ms frames within 40 dB of the loudest frame."""
    hop = sample_rate_hz // 100
    n = len(x) // hop
    if n == 0:
        return 0, len(x)
    e = np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1)
    idx = np.flatnonzero(e >= e.max() * 1e-4)
    if len(idx) == 0:
        return 0, len(x)
    return int(idx[0] * hop), int(min(len(x), (idx[-1] + 1) * hop))


@dataclass
class _Echo:
    gain: float
    delay_samples: int
    rir: np.ndarray | None


class AcousticPath:
    """Builds each tick's microphone signal from what the speaker played."""

    def __init__(self, scenario: Scenario, *, sample_rate_hz: int = 16_000) -> None:
        self.sample_rate_hz = sr = sample_rate_hz
        self.scenario = scenario
        self.user = np.zeros(0, np.float32)
        if scenario.user_audio is not None:
            self.user = load_mono(scenario.user_audio, sample_rate_hz=sr)
            self.user *= np.float32(10 ** (scenario.user_gain_db / 20))
        self.user_start: int | None = None  # sim sample, set when t = 0 is known
        self.bed_start: int | None = None

        self.echo: _Echo | None = None
        if scenario.echo is not None:
            rir = None
            if scenario.echo.rir is not None:
                rir = load_mono(scenario.echo.rir, sample_rate_hz=sr)
                peak = np.max(np.abs(rir))
                rir = rir / peak if peak > 0 else None  # gain_db sets the level, not the file
            self.echo = _Echo(
                gain=10 ** (scenario.echo.gain_db / 20),
                delay_samples=int(round(scenario.echo.delay_ms * sr / 1000)),
                rir=rir,
            )
        hist = 0
        if self.echo is not None:
            rir_len = len(self.echo.rir) if self.echo.rir is not None else 1
            hist = self.echo.delay_samples + rir_len
        self._hist_len = hist + sr  # played-signal history needed for delay + reverb tail
        self._played_hist = np.zeros(self._hist_len, np.float32)
        self._played_total = 0

        self.noise: np.ndarray | None = None
        if scenario.noise is not None:
            bed = load_mono(scenario.noise.audio, sample_rate_hz=sr)
            ref = (
                active_rms(self.user, sample_rate_hz=sr)
                if len(self.user)
                else 10 ** (_NOMINAL_SPEECH_DBFS / 20)
            )
            bed_rms = active_rms(bed, sample_rate_hz=sr)
            if bed_rms > 0 and ref > 0:
                bed = bed * np.float32(ref / bed_rms * 10 ** (-scenario.noise.snr_db / 20))
            self.noise = bed.astype(np.float32)

        self._telephony = scenario.channel == "telephony"
        if self._telephony:
            self._sos = signal.butter(6, [300, 3400], btype="bandpass", fs=sr, output="sos")
            self._zi = signal.sosfilt_zi(self._sos) * 0.0

    # -- placement ----------------------------------------------------------------------------

    def place_user(self, first_audible_sample: int) -> None:
        """Fix the user event on the sim clock, relative to the agent's first audible sample."""
        self.bed_start = first_audible_sample
        if self.scenario.user_onset_s is None or not len(self.user):
            return
        self.user_start = first_audible_sample + int(
            round(self.scenario.user_onset_s * self.sample_rate_hz)
        )

    @property
    def user_voiced_sample(self) -> int | None:
        if self.user_start is None:
            return None
        return self.user_start + int(round(self.scenario.speech_start_s * self.sample_rate_hz))

    @property
    def user_end_sample(self) -> int | None:
        if self.user_start is None:
            return None
        return self.user_start + active_span(self.user, sample_rate_hz=self.sample_rate_hz)[1]

    # -- per tick -----------------------------------------------------------------------------

    def mic(self, start_sample: int, played: np.ndarray) -> np.ndarray:
        """Microphone samples for ``[start_sample, start_sample + len(played))``."""
        n = len(played)
        self._played_hist = np.roll(self._played_hist, -n)
        self._played_hist[-n:] = played
        self._played_total += n
        out = np.zeros(n, np.float32)

        if self.echo is not None and self._played_total > 0:
            d = self.echo.delay_samples
            if self.echo.rir is None:
                seg = self._played_hist[len(self._played_hist) - n - d : len(self._played_hist) - d]
                out += seg * np.float32(self.echo.gain)
            else:
                L = len(self.echo.rir)
                end = len(self._played_hist) - d
                seg = self._played_hist[end - n - L + 1 : end]
                out += (
                    signal.oaconvolve(seg, self.echo.rir, mode="valid").astype(np.float32)
                    * np.float32(self.echo.gain)
                )

        if self.user_start is not None:
            a = start_sample - self.user_start
            if a + n > 0 and a < len(self.user):
                lo, hi = max(a, 0), min(a + n, len(self.user))
                out[lo - a : hi - a] += self.user[lo:hi]

        if self.noise is not None and len(self.noise) and self.bed_start is not None:
            # the bed runs under the scenario, whose timeline starts at the agent's first sample
            rel = start_sample - self.bed_start
            if rel + n > 0:
                idx = np.arange(rel, rel + n)
                bed = self.noise[idx % len(self.noise)]
                bed[idx < 0] = 0.0
                out += bed

        if self._telephony:
            out, self._zi = signal.sosfilt(self._sos, out, zi=self._zi)
            out = _mulaw_roundtrip(out.astype(np.float32))
        return np.clip(out, -1.0, 1.0).astype(np.float32)


def _mulaw_roundtrip(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """G.711-style companding at 8 bits: the quantisation noise a phone line adds."""
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round(y * 127.0) / 127.0
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)
