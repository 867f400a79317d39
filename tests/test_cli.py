from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livekit_bargein.cli import main


def _manifest(tmp_path: Path) -> Path:
    sf.write(tmp_path / "u.wav", np.zeros(1600, np.float32), 16_000)
    lines = [
        {"id": "i1", "label": "interrupt", "agent_text": "Hello there.", "user_audio": "u.wav",
         "user_onset_s": 0.5},
        {"id": "i2", "label": "interrupt", "agent_text": "Hello there.", "user_audio": "u.wav",
         "user_onset_s": 0.5, "user_text": "wait"},
        {"id": "c1", "label": "cough", "agent_text": "Hello there.", "user_audio": "u.wav",
         "user_onset_s": 0.5},
    ]
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in lines) + "\n")
    return path


def test_eval_names_spoken_scenarios_without_a_transcript(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an unknown configuration stops the run before any scenario plays, after the note
    rc = main(["eval", "--manifest", str(_manifest(tmp_path)), "--out", str(tmp_path / "o"),
               "--configs", "no-such-config", "--stt", "final-only"])
    out = capsys.readouterr().out
    assert rc == 2
    assert "1 spoken scenario(s) without user_text" in out
    assert "i1" in out and "i2" not in out  # i2 has its transcript
    assert "c1" not in out  # a cough has no words to transcribe
    assert "no-such-config" in out


def test_eval_rejects_an_unknown_stt_mode(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--manifest", str(_manifest(tmp_path)), "--out", str(tmp_path / "o"),
              "--stt", "batch"])
