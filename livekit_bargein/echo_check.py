"""Is what the canceller left the agent's own voice? Envelope correlation with the played audio.

AEC3 leaks echo for a few hundred ms when it re-converges (a re-alignment, a changed echo path, the
first seconds of a call), and its own estimates do not see it. Leaked echo still follows the
agent's syllables: the 10 ms level envelope of the cleaned microphone correlates with the envelope
of what was played, at the echo path's delay. Near-end speech does not. Pure numpy, no state beyond
two short histories.
"""

from __future__ import annotations

from collections import deque

import numpy as np

_FLOOR_DB = -80.0


class EchoLikeness:
    """Max correlation of the cleaned envelope with the played envelope over echo delays.

    Args:
        window_frames: 10 ms frames compared (300 ms by default: a few syllables).
        max_lag_frames: largest echo delay searched, in 10 ms frames.
        min_active_frames: the played envelope must be above the floor this often in the window.
    """

    def __init__(
        self, *, window_frames: int = 30, max_lag_frames: int = 100, min_active_frames: int = 8
    ) -> None:
        self.window_frames = window_frames
        self.max_lag_frames = max_lag_frames
        self.min_active_frames = min_active_frames
        self._clean: deque[float] = deque(maxlen=window_frames)
        self._ref: deque[float] = deque(maxlen=window_frames + max_lag_frames)

    def push(self, clean_db: float, ref_db: float) -> None:
        """One 10 ms frame: cleaned microphone level and the level played during it (dBFS)."""
        self._clean.append(max(clean_db, _FLOOR_DB))
        self._ref.append(max(ref_db, _FLOOR_DB))

    def score(self, *, delay_frames: int | None = None) -> float:
        """Correlation in [0, 1]; 0 when there is too little to compare.

        With ``delay_frames`` (the canceller's estimate) only lags within ±3 frames of it are
        searched. Without it every lag is searched, which two unrelated speech envelopes pass by
        chance: use it only as a diagnostic.
        """
        w = self.window_frames
        if len(self._clean) < w or len(self._ref) < w:
            return 0.0
        clean_dev, clean_sd = _deviations(np.asarray(self._clean, dtype=np.float64))
        if clean_sd[0] < 1.0:  # a flat cleaned envelope (silence) follows nothing
            return 0.0
        ref = np.asarray(self._ref, dtype=np.float64)
        # windows[k] is the played envelope k frames before the cleaned window's frames (only
        # the lags searched are gathered)
        n_lags = len(ref) - w + 1
        lo, hi = 0, n_lags
        if delay_frames is not None:
            lo, hi = max(0, delay_frames - 3), min(delay_frames + 4, n_lags)
        lags = np.arange(lo, hi)
        if len(lags) == 0:
            return 0.0
        windows = ref[(len(ref) - w - lags)[:, None] + np.arange(w)]
        active = np.count_nonzero(windows > _FLOOR_DB + 1, axis=1) >= self.min_active_frames
        dev, sd = _deviations(windows)
        ok = active & (sd[:, 0] >= 1.0)
        if not ok.any():
            return 0.0
        z = dev[ok] / sd[ok]
        c = clean_dev / clean_sd
        return float(max(0.0, (z @ c).max() / w))


def _deviations(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deviations from the mean along the last axis and the standard deviation (kept as an axis
    of 1): the operations of ``np.std``, rounding included, without its per-call overhead
    (several times this arithmetic on arrays this small)."""
    n = x.shape[-1]
    dev = x - np.add.reduce(x, axis=-1, keepdims=True) / n
    return dev, np.sqrt(np.add.reduce(dev * dev, axis=-1, keepdims=True) / n)
