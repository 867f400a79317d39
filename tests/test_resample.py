"""PolyphaseResampler: exact output counts per 10 ms, fidelity, alias rejection, reset."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from livekit_bargein.resample import PolyphaseResampler

_RATES_HZ = (8_000, 16_000, 24_000, 48_000)


def _sine(freq_hz: float, rate_hz: int, duration_s: float) -> np.ndarray:
    return np.sin(2 * np.pi * freq_hz * np.arange(int(rate_hz * duration_s)) / rate_hz).astype(
        np.float32
    )


@pytest.mark.parametrize(("in_hz", "out_hz"), list(itertools.permutations(_RATES_HZ, 2)))
def test_every_10ms_chunk_gives_10ms(in_hz: int, out_hz: int) -> None:
    rs = PolyphaseResampler(in_rate_hz=in_hz, out_rate_hz=out_hz)
    x = _sine(440.0, in_hz, 0.3)
    n_in = in_hz // 100
    out = [rs.process(x[i : i + n_in]) for i in range(0, len(x), n_in)]
    assert {len(y) for y in out} == {out_hz // 100}
    # a 440 Hz tone comes out as the same tone, shifted by the stated delay
    y = np.concatenate(out)
    t_s = np.arange(len(y)) / out_hz - rs.delay_in_samples / in_hz
    expected = np.sin(2 * np.pi * 440.0 * t_s)
    settled = out_hz // 100  # after the first 10 ms (filter warm-up from silence)
    assert np.abs(y[settled:] - expected[settled:]).max() < 1e-3
    assert rs.delay_in_samples / in_hz < 0.002


def test_odd_chunks_do_not_drift() -> None:
    rs = PolyphaseResampler(in_rate_hz=48_000, out_rate_hz=16_000)
    sizes = [1, 7, 144, 480, 0, 333, 1000]
    total = sum(len(rs.process(np.zeros(n, np.float32))) for n in sizes)
    assert total == -(-sum(sizes) // 3)


def test_rejects_aliases() -> None:
    rs = PolyphaseResampler(in_rate_hz=24_000, out_rate_hz=16_000)
    y = rs.process(_sine(10_000.0, 24_000, 0.5))[200:]  # would alias to 6 kHz
    assert 20 * np.log10(np.sqrt(np.mean(y**2)) / np.sqrt(0.5)) < -60.0


def test_reset_forgets_history() -> None:
    rs = PolyphaseResampler(in_rate_hz=16_000, out_rate_hz=48_000)
    rs.process(np.ones(160, np.float32))
    rs.reset()
    assert np.abs(rs.process(np.zeros(160, np.float32))).max() == 0.0


def test_rejects_bad_rates() -> None:
    with pytest.raises(ValueError, match="rates"):
        PolyphaseResampler(in_rate_hz=0, out_rate_hz=16_000)
