"""Cheap per-window acoustic features: is this addressed speech, or a cough, laugh, breath or noise?

Silero's speech probability fires on anything voice-like, so the barge-in controller weighs it
against a few cues that follow from how the sounds are made:

* **Harmonicity** (periodicity of the band-limited waveform): speech is carried by sustained voicing
  with a smoothly moving pitch; coughs, breaths, throat-clear rasps and noise are turbulent.
* **Envelope shape**: a cough is an explosive glottal release that decays within ~100-250 ms (energy
  concentrated in a few windows, steep attack); speech sustains its level over syllables.
* **Rhythm**: laughter is a train of near-identical "ha" bursts at ~4-6 Hz, regular in timing, with
  unvoiced gaps and pitch jumping between bursts; speech syllables come at a similar rate but with
  irregular durations and a continuous pitch contour.
* **Level relative to the call** (:class:`LevelTracker`): near-end speech addressed to the agent is
  louder and closer than background talkers; the noise floor and the user's own speech level are
  measured per call rather than assumed.

Everything here is pure numpy, synchronous and allocation-light: :func:`analyze_window` costs a few
tens of microseconds per 32 ms window (one forward and one inverse real FFT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "AnalysisOptions",
    "EventEvidence",
    "EvidenceOptions",
    "FrameFeatures",
    "LevelTracker",
    "LevelTrackerOptions",
    "analyze_window",
]

_SILENCE_DB = -120.0
"""Level reported for digital silence; also the floor of every dB value here."""

_POWER_FLOOR = 10.0 ** (_SILENCE_DB / 10.0)


# --------------------------------------------------------------------------------------------
# per-window features


@dataclass(frozen=True)
class FrameFeatures:
    """Acoustic features of one analysis window.

    Attributes:
        level_db: RMS level in dBFS (0 dB = RMS of 1.0, so a full-scale sine is -3 dBFS); at least
            -120 dB.
        harmonicity: Peak of the normalized autocorrelation of the band-limited (~70-1500 Hz)
            signal at pitch lags (70-400 Hz), computed on the magnitude spectrum, 0..1. Modal
            vowels ~0.85-1, running speech ~0.3-0.9 per window, white noise ~0.25, resonant noise
            (whisper, cough, breath) ~0.25-0.45.
        pitch_hz: Fundamental frequency, or None when harmonicity is below the voicing threshold.
        spectral_flatness: Geometric over arithmetic mean of the power spectrum in 100-4000 Hz, 0..1
            (white noise ~0.55 with a Hann-windowed periodogram, voiced speech ~0.01-0.15).
        spectral_centroid_hz: Power-weighted mean frequency.
        low_band_ratio: Share of power below 300 Hz (throat-clears, rumble, plosive pops).
        high_band_ratio: Share of power above 2 kHz (fricatives, breath, cough bursts).
        duration_ms: Length of the window.
    """

    level_db: float
    harmonicity: float
    pitch_hz: float | None
    spectral_flatness: float
    spectral_centroid_hz: float
    low_band_ratio: float
    high_band_ratio: float
    duration_ms: float


@dataclass(frozen=True)
class AnalysisOptions:
    """Parameters of :func:`analyze_window`. The defaults suit adult and child voices.

    Attributes:
        pitch_min_hz: Lowest pitch searched (longest autocorrelation lag).
        pitch_max_hz: Highest pitch searched (shortest lag).
        voicing_threshold: Harmonicity from which ``pitch_hz`` is reported.
        octave_tolerance: A shorter-lag autocorrelation peak within this fraction of the best one
            wins: a periodic signal correlates at every multiple of its period, so taking the plain
            maximum would report sub-octaves.
        acf_band_hz: Pass band (low, high) of the spectral weighting applied before the
            autocorrelation. The high-pass keeps rumble from correlating at every lag; the low-pass
            drops the weakly harmonic upper spectrum (aspiration, fricative noise), where voicing is
            least visible, so harmonicity reflects the low harmonics that carry pitch.
        acf_edge_hz: Width of the raised-cosine edges of that band.
    """

    pitch_min_hz: float = 70.0
    pitch_max_hz: float = 400.0
    voicing_threshold: float = 0.45
    octave_tolerance: float = 0.85
    acf_band_hz: tuple[float, float] = (70.0, 1500.0)
    acf_edge_hz: float = 40.0


_DEFAULT_ANALYSIS = AnalysisOptions()

_ACF_RATE_HZ = 8000.0
"""Lag-grid rate of the autocorrelation: fine enough for pitch to 400 Hz (interpolated)."""

_GAC_SCALE = 1.0 / 0.6
"""The compression also spreads the window's leakage, which caps a strictly periodic signal's
normalized peak at ~0.6 (measured over 70-400 Hz and 15-32 ms windows); rescaled so it reads ~1."""

_FLATNESS_BAND_HZ = (100.0, 4000.0)
_LOW_BAND_EDGE_HZ = 300.0
_HIGH_BAND_EDGE_HZ = 2000.0


class _Analyzer:
    """Constants for one (window length, sample rate, options): weights, lag range, band bins."""

    def __init__(self, n_samples: int, sample_rate_hz: int, opts: AnalysisOptions) -> None:
        self.n = n_samples
        self.sample_rate_hz = sample_rate_hz
        self.duration_ms = 1000.0 * n_samples / sample_rate_hz
        # Zero-padded to 2n, lags up to n do not wrap around (linear, not circular, correlation).
        self.nfft = 2 * n_samples
        n_bins = self.nfft // 2 + 1
        freqs_hz = np.arange(n_bins) * (sample_rate_hz / self.nfft)

        lo_hz, hi_hz = opts.acf_band_hz
        edge_hz = max(opts.acf_edge_hz, 1e-6)
        rise = np.clip((freqs_hz - (lo_hz - edge_hz)) / edge_hz, 0.0, 1.0)
        fall = np.clip(((hi_hz + edge_hz) - freqs_hz) / edge_hz, 0.0, 1.0)
        self.acf_weight = (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))

        # The weighted power is zero above ~1.5 kHz, so the autocorrelation needs no more than an
        # 8 kHz lag grid: an inverse FFT over the lowest bins only, `decim` times shorter.
        decim = max(1, int(sample_rate_hz // _ACF_RATE_HZ))
        while decim > 1 and (
            self.nfft % (2 * decim) or sample_rate_hz / decim / 2 < hi_hz + edge_hz
        ):
            decim -= 1
        self.acf_nfft = self.nfft // decim
        self.acf_weight = self.acf_weight[: self.acf_nfft // 2 + 1].copy()
        self.acf_bins = self.acf_weight.shape[0]
        acf_rate_hz = sample_rate_hz / decim
        # Lags searched (in acf-grid steps), one extra on each side so every candidate can be tested
        # as a local maximum. Lags beyond ~60 % of the window overlap too little to normalize.
        lag_lo = max(2, math.floor(acf_rate_hz / opts.pitch_max_hz))
        lag_hi = min(math.ceil(acf_rate_hz / opts.pitch_min_hz), int(0.6 * n_samples / decim))
        self.lag_lo = lag_lo
        self.acf_rate_hz = acf_rate_hz
        self.has_lags = lag_hi - lag_lo >= 2
        lags_samples = np.arange(lag_lo - 1, lag_hi + 2) * decim
        # Unbiased normalization: lag t overlaps n - t samples; with r(0) and _GAC_SCALE a strictly
        # periodic signal scores ~1 at its period whatever the lag.
        self.unbias = n_samples / np.maximum(n_samples - lags_samples, 1)
        self.voicing_threshold = opts.voicing_threshold
        self.octave_tolerance = opts.octave_tolerance

        # The Hann-windowed spectrum is derived from the rectangular one (bins 2 .. n_bins - 3; see
        # analyze_window), so the spectral-shape bins below index that shortened array.
        hann_freqs_hz = freqs_hz[2:-2]
        self.hann_freqs_hz = hann_freqs_hz
        nyq_hz = sample_rate_hz / 2.0
        f_lo = int(np.searchsorted(hann_freqs_hz, _FLATNESS_BAND_HZ[0]))
        f_hi = int(np.searchsorted(hann_freqs_hz, min(_FLATNESS_BAND_HZ[1], nyq_hz), side="right"))
        self.flat_slice = slice(f_lo, max(f_hi, f_lo + 1))
        # One matrix-vector product gives total power, low-band power, high-band power and the
        # centroid numerator.
        self.band_matrix = np.stack(
            [
                np.ones_like(hann_freqs_hz),
                (hann_freqs_hz < _LOW_BAND_EDGE_HZ).astype(np.float64),
                (hann_freqs_hz > _HIGH_BAND_EDGE_HZ).astype(np.float64),
                hann_freqs_hz,
            ]
        )


@lru_cache(maxsize=32)
def _analyzer(n_samples: int, sample_rate_hz: int, opts: AnalysisOptions) -> _Analyzer:
    return _Analyzer(n_samples, sample_rate_hz, opts)


def analyze_window(
    x: np.ndarray, *, sample_rate_hz: int, options: AnalysisOptions = _DEFAULT_ANALYSIS
) -> FrameFeatures:
    """Compute :class:`FrameFeatures` for one analysis window.

    One zero-padded real FFT serves everything: its band-weighted magnitude gives the (generalized)
    autocorrelation through one short inverse FFT (Wiener-Khinchin), and a 3-tap kernel on it gives
    the Hann-windowed spectrum used for the spectral-shape features.

    Args:
        x: Mono float samples in [-1, 1] (divide int16 by 32768 first). 32 ms (512 samples
            at 16 kHz, 256 at 8 kHz) is the intended length; any length of at least 2 ms works, but
            pitches whose period exceeds ~60 % of the window are not searched.
        sample_rate_hz: Sample rate of ``x``.
        options: Analysis parameters.

    Returns:
        The window's features.

    Raises:
        ValueError: if ``x`` is not 1-D or shorter than 2 ms.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if x.ndim != 1 or n < max(16, sample_rate_hz // 500):
        raise ValueError(f"expected a 1-D window of at least 2 ms, got shape {x.shape}")
    a = _analyzer(n, sample_rate_hz, options)
    # DC would leak into the low band and inflate every autocorrelation lag.
    x = x - np.add.reduce(x) / n
    energy = float(np.dot(x, x))
    mean_square = energy / n
    if mean_square <= _POWER_FLOOR:
        return FrameFeatures(_SILENCE_DB, 0.0, None, 1.0, 0.0, 0.0, 0.0, a.duration_ms)
    level_db = 10.0 * math.log10(mean_square)

    spec = np.fft.rfft(x, a.nfft)

    # --- periodicity: normalized autocorrelation of the band-limited signal
    harmonicity = 0.0
    pitch_hz: float | None = None
    if a.has_lags:
        low_spec = spec[: a.acf_bins]
        # Magnitude, not power (a "generalized" autocorrelation, Tolonen & Karjalainen 2000): the
        # compression flattens formant peaks, so noise through a narrow resonance (a whisper, a
        # cough's tail) stops looking periodic at multiples of the formant period.
        acf = np.fft.irfft(np.abs(low_spec) * a.acf_weight, a.acf_nfft)
        r0 = float(acf[0])
        if r0 > 0.0:
            seg = acf[a.lag_lo - 1 : a.lag_lo - 1 + a.unbias.shape[0]] * a.unbias
            seg *= _GAC_SCALE / r0
            mid = seg[1:-1]
            peaks = np.flatnonzero((mid > seg[:-2]) & (mid >= seg[2:]))
            if peaks.shape[0]:
                values = mid[peaks]
                best = float(values.max())
                harmonicity = min(max(best, 0.0), 1.0)
                if harmonicity >= a.voicing_threshold:
                    i = int(peaks[int(np.argmax(values >= a.octave_tolerance * best))])
                    # Parabolic interpolation around the peak: sub-sample lag, < 1 % pitch error.
                    y0, y1, y2 = float(seg[i]), float(seg[i + 1]), float(seg[i + 2])
                    denom = y0 - 2.0 * y1 + y2
                    delta = 0.5 * (y0 - y2) / denom if denom < 0.0 else 0.0
                    pitch_hz = a.acf_rate_hz / (a.lag_lo + i + delta)

    # --- spectral shape on the Hann-windowed spectrum. With 2n-point zero padding, the Hann window
    # 0.5 - 0.5 cos(2 pi t / n) is the kernel (-1/4, 0, 1/2, 0, -1/4) across bins: no second FFT.
    # (Scaled by 2 here; every shape feature is a ratio.)
    hann = np.add(spec[:-4], spec[4:])
    hann *= -0.5
    hann += spec[2:-2]
    power = np.abs(hann) ** 2
    total, low, high, moment = a.band_matrix @ power
    if total <= 0.0:
        return FrameFeatures(level_db, harmonicity, pitch_hz, 1.0, 0.0, 0.0, 0.0, a.duration_ms)
    band = power[a.flat_slice]
    arith = float(np.add.reduce(band)) / band.shape[0]
    eps = 1e-12 * arith + 1e-300  # keeps log() finite on exact spectral zeros, scale-invariant
    geo = math.exp(float(np.add.reduce(np.log(band + eps))) / band.shape[0])
    flatness = min(geo / (arith + eps), 1.0)
    return FrameFeatures(
        level_db=level_db,
        harmonicity=harmonicity,
        pitch_hz=pitch_hz,
        spectral_flatness=flatness,
        spectral_centroid_hz=float(moment / total),
        low_band_ratio=float(low / total),
        high_band_ratio=float(high / total),
        duration_ms=a.duration_ms,
    )


# --------------------------------------------------------------------------------------------
# evidence over one candidate speech event


@dataclass(frozen=True)
class EvidenceOptions:
    """Parameters of :class:`EventEvidence`.

    Attributes:
        voiced_harmonicity: Harmonicity from which a window counts as voiced.
        voiced_speech_prob: Speech probability from which a window counts as voiced.
        active_range_db: Windows within this of the event's loudest window are "active": the
            ratios and means below use only them, so pauses and room noise inside an event do not
            dilute what the sound itself is.
        decay_step_db: A fall of at least this between consecutive windows counts as decaying (a
            cough's tail loses ~2-8 dB per 32 ms; sustained voicing holds its level).
        pitch_jump_ratio: Relative pitch change between neighbouring voiced windows still counted as
            a continuous contour (~15 %: speech glides by a few % per 32 ms).
        pitch_bridge_ms: Voiced windows separated by at most this much unvoiced time are still
            compared (bridges a stop consonant; a laugh's "h" gap too).
        syllable_prominence_db: Rise and fall of the level envelope that delimit a syllable peak.
        max_history_ms: Per-window detail kept (the most recent); ``duration_ms`` and ``voiced_ms``
            cover the whole event.
    """

    voiced_harmonicity: float = 0.5
    voiced_speech_prob: float = 0.5
    active_range_db: float = 30.0
    decay_step_db: float = 2.0
    pitch_jump_ratio: float = 0.15
    pitch_bridge_ms: float = 100.0
    syllable_prominence_db: float = 6.0
    max_history_ms: float = 10_000.0


# Columns of EventEvidence's per-window buffer.
_COL_LEVEL, _COL_HARMONICITY, _COL_PITCH, _COL_FLATNESS, _COL_LOW_BAND, _COL_VOICED = range(6)
_COL_DURATION = 6
_N_COLS = 7

_TOP_ENERGY_SHARE = 0.2
"""Burstiness looks at the share of energy in the loudest 20 % of windows."""


@dataclass(frozen=True)
class _Summary:
    voiced_ratio: float
    mean_harmonicity: float
    mean_flatness: float
    mean_low_band_ratio: float
    max_attack_db: float
    peak_energy_fraction: float
    energy_concentration: float
    decay_share: float
    pitch_stability: float | None
    syllable_count: int
    syllable_rate_hz: float
    rhythm_regularity: float | None
    level_db_p90: float


_EMPTY = _Summary(0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, None, 0, 0.0, None, _SILENCE_DB)


class EventEvidence:
    """Accumulates window features over one candidate speech event and scores what it sounds like.

    Call :meth:`reset` at the event's start (optionally with the level just before it, e.g. the
    noise floor), then :meth:`push` every analysis window. Properties and scores are computed
    lazily, at most once per pushed window (tens of microseconds). They describe the evidence so
    far: voicing is visible after a window or two, envelope shape after ~150 ms, rhythm after
    ~600 ms (four syllables).
    """

    def __init__(self, options: EvidenceOptions | None = None) -> None:
        self._opts = options or EvidenceOptions()
        self.reset()

    def reset(self, *, baseline_db: float | None = None) -> None:
        """Start a new event.

        Args:
            baseline_db: Level just before the event (e.g. the noise floor); lets the first window's
                attack and a first syllable's rise count.
        """
        self._baseline_db = baseline_db
        # Rows [start, end) of a growable buffer, one per window; columns _COL_*. A numpy buffer
        # rather than a deque: the summary then works on a view, without converting the history.
        self._buf = np.empty((64, _N_COLS), dtype=np.float64)
        self._start = 0
        self._end = 0
        self._history_ms = 0.0
        self._duration_ms = 0.0
        self._voiced_ms = 0.0
        self._summary: _Summary | None = None

    def push(self, f: FrameFeatures, speech_prob: float) -> None:
        """Add one analysis window and the speech probability (e.g. Silero's) for it."""
        o = self._opts
        voiced = f.harmonicity >= o.voiced_harmonicity and speech_prob >= o.voiced_speech_prob
        pitch_hz = f.pitch_hz if (voiced and f.pitch_hz is not None) else math.nan
        if self._end == self._buf.shape[0]:
            kept = self._buf[self._start : self._end]
            if self._start < self._buf.shape[0] // 2:  # mostly live rows: grow
                self._buf = np.empty((2 * self._buf.shape[0], _N_COLS), dtype=np.float64)
            self._buf[: kept.shape[0]] = kept.copy()
            self._start, self._end = 0, kept.shape[0]
        self._buf[self._end] = (
            f.level_db,
            f.harmonicity,
            pitch_hz,
            f.spectral_flatness,
            f.low_band_ratio,
            1.0 if voiced else 0.0,
            f.duration_ms,
        )
        self._end += 1
        self._duration_ms += f.duration_ms
        self._history_ms += f.duration_ms
        if voiced:
            self._voiced_ms += f.duration_ms
        while self._history_ms > o.max_history_ms and self._end - self._start > 1:
            self._history_ms -= float(self._buf[self._start, _COL_DURATION])
            self._start += 1
            self._baseline_db = None  # the window before the kept history is not the baseline
        self._summary = None

    # --- raw evidence

    @property
    def window_count(self) -> int:
        """Windows in the kept history."""
        return self._end - self._start

    @property
    def duration_ms(self) -> float:
        """Time pushed since :meth:`reset`."""
        return self._duration_ms

    @property
    def voiced_ms(self) -> float:
        """Time since :meth:`reset` in windows both harmonic and speech by the VAD."""
        return self._voiced_ms

    @property
    def voiced_ratio(self) -> float:
        """Share of the active windows that are voiced, 0..1.

        Running speech ~0.4-0.9 (unvoiced consonants are the rest); coughs, breaths and the breathy
        syllables of laughter ~0-0.25.
        """
        return self._get().voiced_ratio

    @property
    def mean_harmonicity(self) -> float:
        """Mean harmonicity of the active windows: voicing strength without a threshold."""
        return self._get().mean_harmonicity

    @property
    def mean_flatness(self) -> float:
        """Mean spectral flatness of the active windows (1 before the first window)."""
        return self._get().mean_flatness

    @property
    def mean_low_band_ratio(self) -> float:
        """Mean share of power below 300 Hz in the active windows (throat-clears run high)."""
        return self._get().mean_low_band_ratio

    @property
    def max_attack_db(self) -> float:
        """Largest window-to-window level rise, in dB per window (from the baseline if given).

        Large for coughs but also for any speech onset out of silence; reported for the caller,
        not used in :attr:`burstiness`.
        """
        return self._get().max_attack_db

    @property
    def peak_energy_fraction(self) -> float:
        """Share of the active windows' energy in the loudest 20 % of them."""
        return self._get().peak_energy_fraction

    @property
    def decay_share(self) -> float:
        """Share of steps between active windows that fall by at least ``decay_step_db``."""
        return self._get().decay_share

    @property
    def burstiness(self) -> float:
        """How impulsive the level envelope is, 0..1: mean of two envelope cues.

        * energy concentration: the share of energy in the loudest 20 % of active windows, rescaled
          so a flat envelope scores 0 and a single loud window 1;
        * decay dominance: :attr:`decay_share` mapped from ``_DECAY_SHARE_SUSTAINED`` (0) to
          ``_DECAY_SHARE_DECAYING`` (1).

        A cough is an explosive release that then only decays: its energy sits in a window or two
        and most steps after it fall. Speech rises and falls with its syllables and holds vowels.
        """
        s = self._get()
        decaying = _ramp(s.decay_share, _DECAY_SHARE_SUSTAINED, _DECAY_SHARE_DECAYING)
        return 0.5 * s.energy_concentration + 0.5 * decaying

    @property
    def voicing(self) -> float:
        """Voicing evidence, 0..1: mean of the voiced ratio and the mean harmonicity, each ramped.

        ``voiced_ratio`` is mapped from ``_VOICED_RATIO_RAMP[0]`` (0) to ``[1]`` (1) and
        ``mean_harmonicity`` from ``_HARMONICITY_RAMP[0]`` to ``[1]``: the thresholded count says
        how much of the sound is voiced, the mean how clearly.
        """
        s = self._get()
        return 0.5 * _ramp(s.voiced_ratio, *_VOICED_RATIO_RAMP) + 0.5 * _ramp(
            s.mean_harmonicity, *_HARMONICITY_RAMP
        )

    @property
    def pitch_stability(self) -> float | None:
        """Share of neighbouring voiced-window pairs whose pitch changes by less than ~15 %.

        Pairs separated by up to ``pitch_bridge_ms`` of unvoiced time count; jumps of an octave
        (within 10 %) are treated as pitch-tracker errors and skipped. None until a pair exists.
        """
        return self._get().pitch_stability

    @property
    def syllable_count(self) -> int:
        """Peaks of the level envelope (rise and fall of ``syllable_prominence_db``)."""
        return self._get().syllable_count

    @property
    def syllable_rate_hz(self) -> float:
        """Level-envelope peaks per second of kept history."""
        return self._get().syllable_rate_hz

    @property
    def rhythm_regularity(self) -> float | None:
        """``1 - CV`` of the intervals between syllable peaks, 0..1; None with fewer than 3 peaks.

        Laughter repeats one syllable like a clock (CV ~0.1); speech syllables vary (CV ~0.3-0.8,
        though a short stretch of speech can come out regular by chance).
        """
        return self._get().rhythm_regularity

    @property
    def level_db_p90(self) -> float:
        """90th percentile of the window levels (dBFS)."""
        return self._get().level_db_p90

    # --- scores

    def cough_like_score(self) -> float:
        """How much the event so far looks like a cough (or other impulsive non-speech), 0..1.

        ``burstiness * (1 - voicing)``: driven by the envelope -- a cough is an explosive glottal
        release that then only decays -- and gated by the lack of voicing, since a cough's tail is
        turbulent airflow while a loud stressed syllable is voiced. A bout of several coughs still
        scores high: each one decays.
        """
        return _clip01(self.burstiness * (1.0 - self.voicing))

    def laugh_like_score(self) -> float:
        """How much the event so far looks like laughter, 0..1.

        ``rate_fit * regularity * confidence * (0.5 + 0.5 * unsteady)``, driven by rhythm: a laugh
        is a train of near-identical "ha" bursts at ``_LAUGH_RATE_HZ`` (``rate_fit`` 1 inside,
        falling to 0 at ``_LAUGH_RATE_EDGE_HZ``) spaced like a clock (``rhythm_regularity`` mapped
        from ``_REGULARITY_SPEECH`` (0) to ``_REGULARITY_CLOCK`` (1)); ``confidence`` grows from 0
        at 2 to 1 at ``_LAUGH_MIN_SYLLABLES`` syllables, since two intervals can match by chance.
        Supported by what sets the bursts apart from syllables of speech: breathy, weak voicing and
        a pitch that jumps between bursts (``unsteady`` = mean of ``1 - voicing`` and
        ``1 - pitch_stability``).
        """
        s = self._get()
        if s.rhythm_regularity is None:
            return 0.0
        lo_hz, hi_hz = _LAUGH_RATE_HZ
        edge_lo_hz, edge_hi_hz = _LAUGH_RATE_EDGE_HZ
        rate = s.syllable_rate_hz
        rate_fit = min(_ramp(rate, edge_lo_hz, lo_hz), 1.0 - _ramp(rate, hi_hz, edge_hi_hz))
        regularity = _ramp(s.rhythm_regularity, _REGULARITY_SPEECH, _REGULARITY_CLOCK)
        confidence = _ramp(float(s.syllable_count), 2.0, float(_LAUGH_MIN_SYLLABLES))
        jumps = 0.5 if s.pitch_stability is None else 1.0 - s.pitch_stability
        unsteady = 0.5 * (1.0 - self.voicing) + 0.5 * jumps
        return _clip01(rate_fit * regularity * confidence * (0.5 + 0.5 * unsteady))

    def speech_like_score(self) -> float:
        """How much the event so far looks like speech, 0..1.

        ``voicing * (0.5 * contour + 0.25 * smooth + 0.25 * tonal) * (1 - 0.5 * laugh)``, driven
        by voicing (:attr:`voicing`): speech is carried by sustained, clearly periodic phonation,
        which coughs, breaths, throat-clear rasps and noise lack. Weighted by a continuous pitch
        contour (``contour`` = ``pitch_stability``, 0.5 while unknown; creak and laughter jump), a
        non-impulsive envelope (``smooth`` = ``1 - burstiness``) and a harmonic spectrum (``tonal``
        = 1 at mean flatness ``_FLATNESS_TONAL`` falling to 0 at ``_FLATNESS_NOISY``); a clock-like
        laugh rhythm halves it at most. Says nothing about *whose* speech: compare the level with
        :class:`LevelTracker` for that.
        """
        s = self._get()
        contour = 0.5 if s.pitch_stability is None else s.pitch_stability
        smooth = 1.0 - self.burstiness
        tonal = 1.0 - _ramp(s.mean_flatness, _FLATNESS_TONAL, _FLATNESS_NOISY)
        body = 0.5 * contour + 0.25 * smooth + 0.25 * tonal
        return _clip01(self.voicing * body * (1.0 - 0.5 * self.laugh_like_score()))

    # --- internals

    def _get(self) -> _Summary:
        if self._summary is None:
            self._summary = self._summarize() if self._end > self._start else _EMPTY
        return self._summary

    def _summarize(self) -> _Summary:
        o = self._opts
        w = self._buf[self._start : self._end]
        levels_db, pitch_hz = w[:, _COL_LEVEL], w[:, _COL_PITCH]
        durations_ms = w[:, _COL_DURATION]
        max_db = float(levels_db.max())
        active = levels_db >= max_db - o.active_range_db
        active_levels_db = levels_db[active]
        n_active = active_levels_db.shape[0]

        if self._baseline_db is not None:
            rises_db = np.diff(levels_db, prepend=self._baseline_db)
        else:
            rises_db = np.diff(levels_db)
        max_attack_db = max(float(rises_db.max()), 0.0) if rises_db.shape[0] else 0.0

        energy = 10.0 ** (active_levels_db / 10.0)
        k = max(1, math.ceil(_TOP_ENERGY_SHARE * n_active))
        total = float(energy.sum())
        if k < n_active:
            top = float(np.partition(energy, n_active - k)[n_active - k :].sum())
            peak_fraction = top / total
            uniform = k / n_active  # the share a flat envelope would give
            concentration = (peak_fraction - uniform) / (1.0 - uniform)
        else:
            peak_fraction, concentration = 1.0, 0.0
        steps_db = np.diff(active_levels_db)
        decay_share = (
            float(np.count_nonzero(steps_db <= -o.decay_step_db)) / steps_db.shape[0]
            if steps_db.shape[0]
            else 0.0
        )

        window_ms = float(durations_ms.mean())
        stability = _pitch_stability(
            pitch_hz,
            max_gap_windows=1 + int(o.pitch_bridge_ms / window_ms),
            jump_ratio=o.pitch_jump_ratio,
        )
        peaks = _envelope_peaks(
            levels_db,
            prominence_db=o.syllable_prominence_db,
            floor_db=max_db - o.active_range_db,
            start_db=self._baseline_db,
        )
        history_s = float(durations_ms.sum()) / 1000.0
        regularity: float | None = None
        if len(peaks) >= 3:
            intervals = np.diff(np.asarray(peaks, dtype=np.float64))
            regularity = _clip01(1.0 - float(intervals.std()) / float(intervals.mean()))
        return _Summary(
            voiced_ratio=float(w[active, _COL_VOICED].mean()),
            mean_harmonicity=float(w[active, _COL_HARMONICITY].mean()),
            mean_flatness=float(w[active, _COL_FLATNESS].mean()),
            mean_low_band_ratio=float(w[active, _COL_LOW_BAND].mean()),
            max_attack_db=max_attack_db,
            peak_energy_fraction=peak_fraction,
            energy_concentration=_clip01(concentration),
            decay_share=decay_share,
            pitch_stability=stability,
            syllable_count=len(peaks),
            syllable_rate_hz=len(peaks) / history_s if history_s > 0 else 0.0,
            rhythm_regularity=regularity,
            level_db_p90=_nearest_rank(levels_db, 90.0),
        )


# Score constants (physical meaning in the score docstrings).
_DECAY_SHARE_SUSTAINED = 0.3
"""Share of falling steps in sustained sound (speech ~0.3-0.5: syllables rise and fall)."""
_DECAY_SHARE_DECAYING = 0.8
"""Share of falling steps of a sound that only decays after its onset (a cough ~0.6-1)."""
_VOICED_RATIO_RAMP = (0.15, 0.5)
"""Voiced ratio of turbulent sound (coughs, breaths, breathy laughs ~0-0.25: 0) and of running
speech (~0.4-0.9, unvoiced consonants being the rest: 1)."""
_HARMONICITY_RAMP = (0.35, 0.55)
"""Mean active-window harmonicity of noise and turbulence (~0.25-0.4: 0) and of running speech
(~0.45-0.65 with its consonants: 1)."""
_LAUGH_RATE_HZ = (4.0, 7.0)
"""Laugh syllable ("ha") rate: ~4.4-6 Hz in the laughter literature, with some margin."""
_LAUGH_RATE_EDGE_HZ = (3.0, 9.0)
"""Rates where the laugh rate fit reaches 0 (coughs in a bout come at ~2-3 per second)."""
_LAUGH_MIN_SYLLABLES = 4
"""Syllable peaks (three intervals) from which a rhythm is trusted."""
_REGULARITY_SPEECH = 0.6
"""Rhythm regularity (1 - CV of syllable intervals) up to which syllables vary like speech
(CV >= 0.4): scores 0."""
_REGULARITY_CLOCK = 0.85
"""Rhythm regularity from which syllables come like a clock (laughter, CV <= 0.15): scores 1."""
_FLATNESS_TONAL = 0.1
"""Mean spectral flatness of clearly harmonic sound (voiced speech ~0.02-0.1)."""
_FLATNESS_NOISY = 0.4
"""Mean spectral flatness of broadband turbulence (cough burst ~0.2-0.4, white noise ~0.55).

Band-limited noise (a breath, a rasp) can be far less flat; voicing, not flatness, rejects it."""


def _nearest_rank(values: np.ndarray, q: float) -> float:
    """Percentile ``q`` (0..100) by nearest rank: a partition, ~5x cheaper than np.percentile."""
    n = values.shape[0]
    k = min(n - 1, max(0, round(q / 100.0 * (n - 1))))
    return float(np.partition(values, k)[k])


def _clip01(v: float) -> float:
    return 0.0 if v <= 0.0 else (1.0 if v >= 1.0 else float(v))


def _ramp(v: float, lo: float, hi: float) -> float:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between."""
    if hi <= lo:
        return 1.0 if v >= hi else 0.0
    return _clip01((v - lo) / (hi - lo))


def _pitch_stability(
    pitch_hz: np.ndarray, *, max_gap_windows: int, jump_ratio: float
) -> float | None:
    idx = np.flatnonzero(~np.isnan(pitch_hz))
    if idx.shape[0] < 2:
        return None
    close = np.diff(idx) <= max_gap_windows
    ratio = np.abs(np.log2(pitch_hz[idx[1:]] / pitch_hz[idx[:-1]]))
    octave_error = np.abs(ratio - 1.0) < math.log2(1.1)  # tracker slips, not the voice
    counted = close & ~octave_error
    n = int(counted.sum())
    if n == 0:
        return None
    stable = counted & (ratio < math.log2(1.0 + jump_ratio))
    return float(stable.sum()) / n


def _envelope_peaks(
    levels_db: np.ndarray, *, prominence_db: float, floor_db: float, start_db: float | None
) -> list[int]:
    """Indices of level peaks that rise and fall by ``prominence_db`` (hysteresis peak picking).

    A peak still rising or not yet fallen at the end counts: the event may be ongoing.
    """
    peaks: list[int] = []
    valley_db = -math.inf if start_db is None else start_db
    cand = -1
    cand_db = -math.inf
    for i, lv in enumerate(levels_db.tolist()):
        if cand < 0:
            if lv - valley_db >= prominence_db:
                cand, cand_db = i, lv
            elif lv < valley_db:
                valley_db = lv
        elif lv > cand_db:
            cand, cand_db = i, lv
        elif cand_db - lv >= prominence_db:
            peaks.append(cand)
            cand, valley_db = -1, lv
    if cand >= 0:
        peaks.append(cand)
    return [p for p in peaks if levels_db[p] >= floor_db]


# --------------------------------------------------------------------------------------------
# per-call level calibration


@dataclass(frozen=True)
class LevelTrackerOptions:
    """Parameters of :class:`LevelTracker`.

    Attributes:
        window_ms: Duration of one pushed window (sets how many windows the histories hold).
        noise_history_ms: Span of the noise-floor percentile. A rise of the floor is followed after
            ``(1 - noise_percentile / 100)`` of it (4.5 s by default), a fall after
            ``noise_percentile / 100`` of it (0.5 s); shorter loud events are ignored.
        noise_percentile: Percentile of window levels taken as the noise floor: low enough to sit in
            the pauses between words, high enough not to chase single quiet windows.
        speech_history_ms: Span of confirmed user speech kept for the speech level.
        speech_percentile: Percentile of confirmed-speech window levels reported as the speech level
            (the median: robust to soft consonants and to the odd shout).
        min_speech_ms: Confirmed speech needed before a speech level is reported.
        background_history_ms: Span of the background level (windows outside the caller's
            speech runs).
        background_percentile: Percentile of those windows reported as the background level:
            the loud moments of whatever has been going on (babble, a TV, a leaking echo), not
            its average, so that a sound has to rise above the background to be new.
    """

    window_ms: float = 32.0
    noise_history_ms: float = 5_000.0
    noise_percentile: float = 10.0
    speech_history_ms: float = 30_000.0
    speech_percentile: float = 50.0
    min_speech_ms: float = 500.0
    background_history_ms: float = 4_000.0
    background_percentile: float = 90.0
    background_spread_max_db: float = 20.0


class _RollingLevels:
    """Fixed-size ring of levels (dB) with a cached percentile."""

    def __init__(self, capacity: int, percentile: float) -> None:
        self._buf = np.empty(max(1, capacity), dtype=np.float64)
        self._n = 0
        self._pos = 0
        self._percentile = percentile
        self._cached: float | None = None

    def __len__(self) -> int:
        return self._n

    def push(self, level_db: float) -> None:
        self._buf[self._pos] = level_db
        self._pos = (self._pos + 1) % self._buf.shape[0]
        self._n = min(self._n + 1, self._buf.shape[0])
        self._cached = None

    def percentile(self, q: float | None = None) -> float | None:
        if self._n == 0:
            return None
        if q is not None and q != self._percentile:
            return float(np.percentile(self._buf[: self._n], q))
        if self._cached is None:
            # Nearest-rank via partition: a few microseconds, vs ~20 for np.percentile.
            k = min(self._n - 1, max(0, round(self._percentile / 100.0 * (self._n - 1))))
            self._cached = float(np.partition(self._buf[: self._n], k)[k])
        return self._cached


class LevelTracker:
    """Per-call level calibration: the microphone's noise floor and the user's own speech level.

    Push every analysis window's level with :meth:`push`; additionally push the windows confirmed as
    the user's speech (e.g. a turn that produced a transcript) with :meth:`push_speech`. Memory is
    bounded: two fixed rings of window levels.
    """

    def __init__(self, options: LevelTrackerOptions | None = None) -> None:
        self._opts = o = options or LevelTrackerOptions()
        self._noise = _RollingLevels(
            math.ceil(o.noise_history_ms / o.window_ms), o.noise_percentile
        )
        self._speech = _RollingLevels(
            math.ceil(o.speech_history_ms / o.window_ms), o.speech_percentile
        )
        self._min_speech_windows = max(1, math.ceil(o.min_speech_ms / o.window_ms))
        self._background = _RollingLevels(
            math.ceil(o.background_history_ms / o.window_ms), o.background_percentile
        )
        self._min_background_windows = self._background._buf.shape[0] // 2

    def push(self, level_db: float) -> None:
        """Add one window's level (dBFS), whatever it contains."""
        self._noise.push(max(level_db, _SILENCE_DB))

    def push_speech(self, level_db: float) -> None:
        """Add one window's level (dBFS) known to be the user's speech."""
        self._speech.push(max(level_db, _SILENCE_DB))

    def push_background(self, level_db: float) -> None:
        """Add one window's level (dBFS) that was not part of the user's speech."""
        self._background.push(max(level_db, _SILENCE_DB))

    @property
    def background_db(self) -> float | None:
        """High percentile of recent non-speech window levels (dBFS); None until half of
        ``background_history_ms`` was seen, and while those levels spread over more than
        ``background_spread_max_db`` (bursts such as a leaking echo, not a steady background)."""
        if len(self._background) < self._min_background_windows:
            return None
        high = self._background.percentile()
        low = self._background.percentile(10.0)
        assert high is not None and low is not None
        if high - low > self._opts.background_spread_max_db:
            return None
        return high

    @property
    def noise_floor_db(self) -> float | None:
        """Low percentile of recent window levels (dBFS); None before the first window."""
        return self._noise.percentile()

    @property
    def speech_level_db(self) -> float | None:
        """Median level of confirmed user speech (dBFS); None until ``min_speech_ms`` was seen."""
        if len(self._speech) < self._min_speech_windows:
            return None
        return self._speech.percentile()

    def speech_percentile_db(self, q: float) -> float | None:
        """Any percentile ``q`` (0..100) of the confirmed-speech levels, None like the median."""
        if len(self._speech) < self._min_speech_windows:
            return None
        return self._speech.percentile(q)

    def relative_to_speech_db(self, level_db: float) -> float | None:
        """``level_db`` minus the user's speech level: near 0 for the user, well below for a TV."""
        speech_db = self.speech_level_db
        return None if speech_db is None else level_db - speech_db

    def above_noise_db(self, level_db: float) -> float | None:
        """``level_db`` minus the noise floor (a per-window SNR)."""
        floor_db = self.noise_floor_db
        return None if floor_db is None else level_db - floor_db
