"""Streaming rational resampler with a fixed delay and an exact output count (numpy only).

soxr (and ``rtc.AudioResampler``, soxr inside) hands output back in 30-40 ms bursts at its useful
quality settings: a 10 ms chunk in often gives nothing out, the next gives three chunks' worth.
The echo reference and the VAD analysis both work 10 ms at a time on a clock, so they need a
resampler that turns every chunk into exactly its share of output, with a constant small delay.
"""

from __future__ import annotations

from math import gcd

import numpy as np

__all__ = ["PolyphaseResampler"]


class PolyphaseResampler:
    """Windowed-sinc polyphase resampler from ``in_rate_hz`` to ``out_rate_hz``, mono float32.

    After ``T`` input samples in total it has produced ``ceil(T * out / in)`` output samples, so
    every 10 ms chunk at a multiple-of-100 Hz rate turns into exactly 10 ms. The delay is
    constant: ``delay_in_samples`` at the input rate (~0.5 ms at the default length).

    Args:
        in_rate_hz: input sample rate.
        out_rate_hz: output sample rate.
        half_taps: filter half-length in samples of the lower of the two rates (quality vs cost).
    """

    def __init__(self, *, in_rate_hz: int, out_rate_hz: int, half_taps: int = 12) -> None:
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise ValueError(f"rates must be > 0, got {in_rate_hz} -> {out_rate_hz}")
        g = gcd(in_rate_hz, out_rate_hz)
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        self._up = out_rate_hz // g
        self._down = in_rate_hz // g
        up, down = self._up, self._down
        # Low-pass at the upsampled rate: cutoff 0.45 x the lower rate (0.9 of its Nyquist).
        n_taps = 2 * half_taps * max(up, down) + 1
        cutoff = 0.9 / max(up, down)  # fraction of the upsampled Nyquist
        k = np.arange(n_taps) - (n_taps - 1) / 2
        h = cutoff * np.sinc(cutoff * k) * np.kaiser(n_taps, 8.0) * up
        self._taps_per_phase = -(-n_taps // up)
        h = np.pad(h, (0, self._taps_per_phase * up - n_taps))
        # _bank[phase, k] multiplies x[i0 - k] for the output at upsampled position i0 * up + phase
        bank = h.reshape(self._taps_per_phase, up).T
        # unit DC gain in every phase: otherwise the phases disagree and the output ripples
        self._bank = (bank / bank.sum(axis=1, keepdims=True)).astype(np.float32)
        self._bank_rev = np.ascontiguousarray(self._bank[:, ::-1])  # taps in input order
        self.delay_in_samples = (n_taps - 1) / 2 / up
        self.reset()

    def reset(self) -> None:
        """Forget the signal so far (history is silence again)."""
        self._hist = np.zeros(self._taps_per_phase - 1, np.float32)
        self._in_total = 0
        self._out_total = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        """Resample the next chunk; returns every output sample its input completes."""
        x = np.asarray(x, np.float32).reshape(-1)
        buf = np.concatenate([self._hist, x])
        base = self._in_total - len(self._hist)  # absolute input index of buf[0]
        self._in_total += len(x)
        first = self._out_total
        end = -(-self._in_total * self._up // self._down)  # ceil(T * up / down)
        self._out_total = end
        taps = self._taps_per_phase
        keep = taps - 1
        self._hist = buf[len(buf) - keep :] if keep else np.zeros(0, np.float32)
        n_out = end - first
        if n_out <= 0:
            return np.zeros(0, np.float32)
        up, down = self._up, self._down
        if up <= _STRIDED_MAX_UP:
            # Outputs of one phase read the input every `down` samples: a strided view and one
            # matrix-vector product per phase instead of a gather (48 -> 16 kHz: 31 -> ~12 µs).
            y = np.empty(n_out, np.float32)
            item = buf.itemsize
            for r in range(min(up, n_out)):
                pos = (first + r) * down
                # window ending at the output's newest input sample; the history (zeros before
                # the first sample) keeps it inside buf, and the last output's sample is in buf
                s0 = pos // up - base - keep
                count = (n_out - r + up - 1) // up
                rows = np.lib.stride_tricks.as_strided(
                    buf[s0:], shape=(count, taps), strides=(down * item, item), writeable=False
                )
                y[r::up] = rows @ self._bank_rev[pos % up]
            return y
        j = np.arange(first, end, dtype=np.int64)
        pos = j * down
        i0 = pos // up - base
        idx = i0[:, None] - np.arange(taps)[None, :]
        # before the first sample the history holds zeros, never negative indices
        y = np.einsum("jk,jk->j", self._bank[pos % up], buf[idx])
        return y.astype(np.float32)


_STRIDED_MAX_UP = 8
"""Up to this many phases (48 -> 16 kHz: 1, 24 -> 16 kHz: 2) the strided path is faster."""
