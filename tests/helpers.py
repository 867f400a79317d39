"""Small signal helpers shared by tests."""

from __future__ import annotations

import numpy as np


def room_ir(rate_hz: int, *, t60_s: float = 0.3, seed: int = 1) -> np.ndarray:
    """Direct path plus an exponentially decaying noise tail (direct-to-reverberant 0 dB)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(t60_s * rate_hz)) / rate_hz
    h = rng.standard_normal(len(t)) * np.exp(-6.9 * t / t60_s)
    h[0] = np.sqrt(np.sum(h[1:] ** 2))
    return (h / np.sqrt(np.sum(h**2))).astype(np.float32)
