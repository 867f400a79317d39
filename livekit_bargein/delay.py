"""Bulk echo-delay estimation between the far-end reference and the microphone (GCC-PHAT).

WebRTC's AEC3 finds the echo by itself only while the echo delay stays below roughly 500 ms; a
network round trip or a deep playout buffer easily exceeds that. This estimator finds the bulk
delay so the caller can pre-delay the reference and hand AEC3 a small residual delay.

Method: both signals are low-passed and decimated to ~8 kHz. Every block (~250 ms) the mic block
is cross-correlated with the reference segment that could have produced it (block + max delay),
the cross-spectra of successive active blocks are averaged with exponential forgetting (~1 s of
history), PHAT-weighted (whitened) and transformed back; the peak lag is the delay. A second,
short average (~0.25 s) only watches for a changed delay: the long one is slow to let go of an
old peak (the whitening favours whichever path dominates). The whole cost is a few FFTs of
~10 k points per block.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sp_fft

__all__ = ["EchoDelayEstimator"]

_ANALYSIS_RATE_HZ = 8_000
# PHAT weighting is restricted to this band: below it there is hum/HPF roll-off, above it the
# decimation filter; whitening those bins would only amplify noise.
_BAND_LO_HZ = 200.0
_BAND_HI_FRACTION = 0.85  # of the analysis Nyquist frequency
# Correlation peak/median ratio that unrelated signals reach by chance; confidence is
# 1 - _CHANCE_RATIO / ratio, so 0.5 means a peak twice as prominent as chance allows.
_CHANCE_RATIO = 10.0
# Estimates closer than this are the same echo path (jitter, early reflections).
_SAME_PATH_MS = 20.0


class EchoDelayEstimator:
    """Estimates the bulk delay of the echo of ``ref`` inside ``mic`` with GCC-PHAT.

    Feed equal-length chunks of the far-end reference (what was played) and the microphone, in
    any chunk size, at one sample rate. The estimate is only updated from blocks where the
    reference carries signal (level gate) and where the correlation peak stands clearly above
    every other lag (peak over median, reported as ``confidence``). Small changes are smoothed;
    a jump is followed once two consecutive blocks of the short-term average agree on the new
    delay (~0.5-0.75 s after the change); a path that vanished is released (``delay_ms`` back to
    None, ~5 s of the far end playing into a mic without its echo).

    Args:
        sample_rate_hz: rate of both inputs.
        max_delay_ms: largest delay searched (lags 0..max_delay_ms, mic lagging the reference).
        block_ms: analysis hop; the estimate can change once per block.
        history_s: time constant of the cross-spectrum averaging (counted in active blocks).
        change_history_s: time constant of the short average that detects delay changes.
        ref_gate_dbfs: the reference segment must be at least this loud (RMS) to analyse a block.
        min_confidence: ``confidence`` a block needs before it may move the estimate.
        release_after_s: the estimate is dropped (``delay_ms`` back to None) once the long
            average has shown no echo path (confidence under a quarter of ``min_confidence``)
            for this much far-end activity: the caller picked up the handset or put on a
            headset, or the first lock was a chance peak. 0 keeps an estimate for good.
    """

    def __init__(
        self,
        *,
        sample_rate_hz: int,
        max_delay_ms: float = 1000.0,
        block_ms: float = 250.0,
        history_s: float = 1.0,
        change_history_s: float = 0.25,
        ref_gate_dbfs: float = -50.0,
        min_confidence: float = 0.5,
        release_after_s: float = 3.0,
    ) -> None:
        if sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
        if max_delay_ms <= 0:
            raise ValueError(f"max_delay_ms must be > 0, got {max_delay_ms}")
        self.sample_rate_hz = int(sample_rate_hz)
        self.max_delay_ms = float(max_delay_ms)
        self.min_confidence = float(min_confidence)
        if release_after_s < 0:
            raise ValueError(f"release_after_s must be >= 0, got {release_after_s}")
        self._release_blocks = int(math.ceil(release_after_s * 1000.0 / block_ms))
        self._decim = max(1, self.sample_rate_hz // _ANALYSIS_RATE_HZ)
        self._rate_hz = self.sample_rate_hz / self._decim
        self._block = max(1, int(round(block_ms * self._rate_hz / 1000)))
        self._max_lag = int(round(self.max_delay_ms * self._rate_hz / 1000))
        # Circular correlation of the zero-padded block against the (block + max lag) segment
        # has no wrap-around for lags 0..max_lag when n_fft >= block + max_lag.
        self._seg = self._block + self._max_lag
        self._n_fft = sp_fft.next_fast_len(self._seg, real=True)
        self._forget = math.exp(-(block_ms / 1000.0) / max(history_s, 1e-3))
        self._forget_short = math.exp(-(block_ms / 1000.0) / max(change_history_s, 1e-3))
        self._gate_ms = 10 ** (ref_gate_dbfs / 10)
        hz_per_bin = self._rate_hz / self._n_fft
        self._band = slice(
            int(math.ceil(_BAND_LO_HZ / hz_per_bin)),
            int(_BAND_HI_FRACTION * self._rate_hz / 2 / hz_per_bin) + 1,
        )
        self._raw_block = self._block * self._decim
        self.reset()

    def reset(self) -> None:
        """Forget all history and the current estimate."""
        self._pend_ref = np.zeros(self._raw_block, np.float32)
        self._pend_mic = np.zeros(self._raw_block, np.float32)
        self._pend_n = 0
        self._ref_hist = np.zeros(self._seg, np.float32)  # decimated, newest last
        self._cross = np.zeros(int(self._band.stop - self._band.start), np.complex64)
        self._cross_short = np.zeros_like(self._cross)
        self._weighted = np.zeros(self._n_fft // 2 + 1, np.complex64)
        self._n_blocks = 0  # blocks seen (the reference history fills up first)
        self._delay_ms: float | None = None
        self._confidence = 0.0
        self._candidate_ms: float | None = None
        self._candidate_hits = 0
        self._pathless_blocks = 0  # consecutive analysed blocks without an echo path
        self.updates = 0  # analysed blocks that passed the level gate

    # -- public state --------------------------------------------------------------------

    @property
    def delay_ms(self) -> float | None:
        """Smoothed delay of the echo behind the reference, or None before a confident block."""
        return self._delay_ms

    @property
    def confidence(self) -> float:
        """Prominence of the last analysed correlation peak, in [0, 1] (0 before any).

        ``1 - 10 / (peak / median)``: 0 for anything chance could produce, 0.5 for a peak
        twice as prominent, ~0.95 for a clean echo path.
        """
        return self._confidence

    # -- feeding -------------------------------------------------------------------------

    def push(self, ref: np.ndarray, mic: np.ndarray) -> None:
        """Add equal-length chunks of reference and microphone (float32, same rate)."""
        if ref.shape != mic.shape or ref.ndim != 1:
            raise ValueError(
                f"ref and mic must be 1-D and equally long, got {ref.shape} and {mic.shape}"
            )
        n, i = len(ref), 0
        while i < n:
            take = min(n - i, self._raw_block - self._pend_n)
            self._pend_ref[self._pend_n : self._pend_n + take] = ref[i : i + take]
            self._pend_mic[self._pend_n : self._pend_n + take] = mic[i : i + take]
            self._pend_n += take
            i += take
            if self._pend_n == self._raw_block:
                self._pend_n = 0
                self._block_ready()

    # -- analysis ------------------------------------------------------------------------

    def _decimate(self, x: np.ndarray) -> np.ndarray:
        # Boxcar average: a crude anti-alias filter, but the aliases come from the weak upper
        # speech band and land mostly outside the PHAT band, and it costs a few microseconds
        # where a proper low-pass costs as much as the FFTs.
        d = self._decim
        y = x[0::d].copy()
        for j in range(1, d):
            y += x[j::d]
        if d > 1:
            y *= np.float32(1.0 / d)
        return y

    def _block_ready(self) -> None:
        ref = self._decimate(self._pend_ref)
        mic = self._decimate(self._pend_mic)
        b = self._block
        self._ref_hist[:-b] = self._ref_hist[b:]
        self._ref_hist[-b:] = ref
        self._n_blocks += 1
        # Wait until the reference history covers every lag: a half-empty segment biases the
        # correlation towards short delays.
        if self._n_blocks * b < self._seg:
            return
        ref_ms = float(np.dot(self._ref_hist, self._ref_hist)) / self._seg
        mic_ms = float(np.dot(mic, mic)) / b
        if ref_ms < self._gate_ms or mic_ms <= 1e-14:
            return  # far end silent: the mic cannot contain its echo
        self.updates += 1
        spec_mic = sp_fft.rfft(mic, n=self._n_fft)[self._band]
        spec_ref = sp_fft.rfft(self._ref_hist, n=self._n_fft)[self._band]
        # Normalise each block like a correlation coefficient, so that neither a loud reference
        # nor loud near-end speech (double talk) lets one block dominate the average.
        block = np.conj(spec_mic) * spec_ref / np.float32(math.sqrt(ref_ms * mic_ms))
        self._cross *= self._forget
        self._cross += block
        self._cross_short *= self._forget_short
        self._cross_short += block
        long_ms, self._confidence = self._peak(self._cross)
        short_ms, short_conf = self._peak(self._cross_short)
        self._update_estimate(long_ms, short_ms, short_conf)

    def _peak(self, cross: np.ndarray) -> tuple[float, float]:
        """GCC-PHAT of an averaged cross-spectrum: (peak lag in ms, confidence)."""
        mag = np.abs(cross)
        # PHAT: keep only the phase (regularised so empty bins do not turn into noise).
        self._weighted[self._band] = cross / (mag + np.float32(1e-3 * mag.mean() + 1e-30))
        # g[k] = sum_i mic[i] * ref_seg[i + k]; mic sample i pairs with the reference sample
        # (max_lag - k) before it, so lag d = max_lag - k.
        g = sp_fft.irfft(self._weighted, n=self._n_fft)[: self._max_lag + 1]
        corr = np.abs(g[::-1])
        k = int(np.argmax(corr))
        peak = float(corr[k])
        # Peak over median: unrelated signals reach ~6-17 (the maximum of ~8000 noisy lags);
        # a real echo path gives 40-200 even in a reverberant room.
        # Every 4th lag gives the same median at a quarter of the cost.
        sub = corr[::4] if len(corr) >= 400 else corr.copy()
        median = float(np.partition(sub, len(sub) // 2)[len(sub) // 2])
        ratio = peak / median if median > 0 else math.inf
        confidence = max(0.0, 1.0 - _CHANCE_RATIO / ratio)
        return self._refine(corr, k) * 1000.0 / self._rate_hz, confidence

    @staticmethod
    def _refine(corr: np.ndarray, k: int) -> float:
        """Parabolic interpolation of the peak for sub-sample resolution."""
        if 0 < k < len(corr) - 1:
            a, b, c = float(corr[k - 1]), float(corr[k]), float(corr[k + 1])
            den = a - 2 * b + c
            if den < 0:
                return k + 0.5 * (a - c) / den
        return float(k)

    def _update_estimate(self, long_ms: float, short_ms: float, short_conf: float) -> None:
        cur = self._delay_ms
        long_ok = self._confidence >= self.min_confidence
        if cur is not None and self._release_blocks:
            pathless = self._confidence < 0.25 * self.min_confidence
            self._pathless_blocks = self._pathless_blocks + 1 if pathless else 0
            if self._pathless_blocks >= self._release_blocks:
                self._delay_ms = None
                self._candidate_ms, self._candidate_hits = None, 0
                self._pathless_blocks = 0
                return
        if cur is None:
            # The first estimate, too, needs two consecutive blocks that agree: one block of a
            # caller talking over the agent can peak by chance (seen: 0.63 with no echo at all).
            # The short average must agree too: the long one carries a chance peak over blocks.
            agree = short_conf >= self.min_confidence and abs(short_ms - long_ms) <= _SAME_PATH_MS
            if not (long_ok and agree):
                self._candidate_ms, self._candidate_hits = None, 0
                return
            cand = self._candidate_ms
            if cand is not None and abs(long_ms - cand) <= _SAME_PATH_MS:
                self._delay_ms = long_ms
                self._candidate_ms, self._candidate_hits = None, 0
            else:
                self._candidate_ms, self._candidate_hits = long_ms, 1
            return
        # A different delay is proposed by the recent blocks (fast) or, when those are too
        # noisy (very reverberant room), by the long average.
        proposal: float | None = None
        if short_conf >= self.min_confidence and abs(short_ms - cur) > _SAME_PATH_MS:
            proposal = short_ms
        elif long_ok and abs(long_ms - cur) > _SAME_PATH_MS:
            proposal = long_ms
        if proposal is not None:
            # Follow once two consecutive blocks agree: one spurious peak cannot move it.
            cand = self._candidate_ms
            if cand is not None and abs(proposal - cand) <= _SAME_PATH_MS:
                self._candidate_hits += 1
            else:
                self._candidate_ms, self._candidate_hits = proposal, 1
            if self._candidate_hits >= 2:
                self._delay_ms = proposal
                self._cross[:] = self._cross_short  # drop the history of the old path
                self._candidate_ms, self._candidate_hits = None, 0
            return
        self._candidate_ms, self._candidate_hits = None, 0
        if long_ok:
            # Same path: smooth out the jitter of the peak (reflections, interpolation).
            self._delay_ms = cur + 0.3 * (long_ms - cur)
