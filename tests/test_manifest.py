"""Manifest validation: errors name the line and the key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livekit_bargein.eval.manifest import ManifestError, load_manifest


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    sf.write(tmp_path / "u.wav", np.zeros(1600, np.float32), 16000)
    return tmp_path


def _write(folder: Path, *lines: dict | str) -> Path:
    p = folder / "m.jsonl"
    p.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return p


GOOD = {"id": "a", "label": "interrupt", "agent_text": "Hello there.", "user_audio": "u.wav",
        "user_onset_s": 1.0}


def test_good_manifest_with_defaults(folder: Path) -> None:
    echo = {"id": "e", "label": "echo_only", "agent_text": "Hi.",
            "echo": {"gain_db": -10, "delay_ms": 120}}
    sc = load_manifest(_write(folder, GOOD, echo))
    assert sc[0].user_audio == (folder / "u.wav").resolve()
    assert sc[0].channel == "wideband" and sc[0].speech_start_s == 0.0
    assert sc[1].user_audio is None and sc[1].echo is not None and sc[1].echo.delay_ms == 120


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"label": "shout"}, "label"),
        ({"agent_text": ""}, "agent_text"),
        ({"user_onset_s": "soon"}, "user_onset_s"),
        ({"user_onset_s": -1}, "user_onset_s"),
        ({"user_audio": "missing.wav"}, "user_audio"),
        ({"channel": "satellite"}, "channel"),
        ({"echo": {"gain_db": -10}}, "echo.delay_ms"),
        ({"noise": {"audio": "u.wav", "snr_db": float("nan")}}, "noise.snr_db"),
        ({"user_gain_db": True}, "user_gain_db"),
    ],
)
def test_bad_value_names_line_and_key(folder: Path, change: dict, key: str) -> None:
    bad = {**GOOD, "id": "b", **change}
    with pytest.raises(ManifestError) as ei:
        load_manifest(_write(folder, GOOD, bad))
    assert ei.value.line_no == 2 and ei.value.key == key
    assert f"m.jsonl:2: key '{key}'" in str(ei.value)


def test_missing_required_key(folder: Path) -> None:
    bad = {k: v for k, v in GOOD.items() if k != "user_audio"}
    with pytest.raises(ManifestError, match="key 'user_audio'"):
        load_manifest(_write(folder, bad))


def test_duplicate_id_and_bad_json(folder: Path) -> None:
    with pytest.raises(ManifestError, match="duplicate id 'a'"):
        load_manifest(_write(folder, GOOD, GOOD))
    with pytest.raises(ManifestError, match=":2: not valid JSON"):
        load_manifest(_write(folder, GOOD, "{oops"))


def test_unknown_key_warns_but_loads(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    sc = load_manifest(_write(folder, {**GOOD, "mood": "cheerful"}))
    assert len(sc) == 1
    assert any("unknown manifest key" in r.message for r in caplog.records)
