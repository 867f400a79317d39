"""AcousticPath: echo delay and gain, sample-exact user placement, stereo/rate handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from livekit_bargein.eval.acoustics import AcousticPath, load_mono
from livekit_bargein.eval.manifest import EchoSpec, Scenario


def _scenario(**kw: object) -> Scenario:
    return Scenario(id="x", label="interrupt", agent_text="hi", **kw)  # type: ignore[arg-type]


def test_echo_is_delayed_and_scaled() -> None:
    path = AcousticPath(_scenario(echo=EchoSpec(gain_db=-6.0, delay_ms=30.0)))
    impulse = np.zeros(160, np.float32)
    impulse[5] = 1.0
    silence = np.zeros(160, np.float32)
    outs = [path.mic(0, impulse)] + [path.mic(160 * i, silence) for i in (1, 2, 3)]
    mic = np.concatenate(outs)
    k = int(np.argmax(np.abs(mic)))
    assert k == 5 + 480  # 30 ms at 16 kHz
    assert abs(mic[k] - 10 ** (-6 / 20)) < 1e-4


def test_user_event_placed_relative_to_first_audible(tmp_path: Path) -> None:
    tone = np.full(800, 0.25, np.float32)
    sf.write(tmp_path / "u.wav", np.stack([tone, tone], axis=1), 8000)  # stereo, 8 kHz
    sc = _scenario(user_audio=tmp_path / "u.wav", user_onset_s=0.5, speech_start_s=0.01)
    path = AcousticPath(sc)
    path.place_user(first_audible_sample=1000)
    assert path.user_start == 1000 + 8000
    assert path.user_voiced_sample == 1000 + 8000 + 160
    assert len(path.user) == 1600  # resampled to 16 kHz
    chunk = path.mic(9000 - 80, np.zeros(160, np.float32))
    assert np.all(chunk[:80] == 0) and np.all(np.abs(chunk[90:150] - 0.25) < 0.02)


def test_load_mono_rejects_nan(tmp_path: Path) -> None:
    x = np.zeros(100, np.float32)
    x[3] = np.nan
    sf.write(tmp_path / "n.wav", x, 16000, subtype="FLOAT")
    try:
        load_mono(tmp_path / "n.wav", sample_rate_hz=16000)
    except ValueError as e:
        assert "n.wav" in str(e) and "NaN" in str(e)
    else:
        raise AssertionError("NaN audio accepted")
