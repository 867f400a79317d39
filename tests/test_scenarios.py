from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livekit_bargein.eval.manifest import LABELS, Scenario, load_manifest
from livekit_bargein.eval.scenarios import (
    AGENT_REPLIES,
    SET_VERSION,
    build_bundled_set,
    reply_duration_estimate_s,
)

pytest.importorskip("piper")

SPEECH_LABELS = {"interrupt", "backchannel", "background_speech"}
PREFIX = 12


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundled_set(tmp_path_factory.mktemp("bundle"), seed=0)


@pytest.fixture(scope="module")
def scenarios(built: Path) -> list[Scenario]:
    return load_manifest(built)  # also checks that every referenced file exists


def _by_label(scenarios: list[Scenario], label: str) -> list[Scenario]:
    return [s for s in scenarios if s.label == label]


def test_size_and_labels(scenarios: list[Scenario]) -> None:
    assert len(scenarios) >= 80
    counts = Counter(s.label for s in scenarios)
    assert set(counts) == set(LABELS)
    assert counts["interrupt"] >= 25


def test_ids_are_readable_and_paths_relative(built: Path, scenarios: list[Scenario]) -> None:
    for s in scenarios:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*-\d{3}", s.id), s.id
        assert s.id.startswith(s.label.replace("_", "-"))
    for line in built.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        paths = [
            obj.get("user_audio"),
            (obj.get("echo") or {}).get("rir"),
            (obj.get("noise") or {}).get("audio"),
        ]
        for p in filter(None, paths):
            assert not Path(p).is_absolute() and p.startswith("audio/")


def test_bundle_info(built: Path) -> None:
    info = json.loads((built.parent / "bundle.json").read_text())
    assert info["set_version"] == SET_VERSION == "1"
    assert info["seed"] == 0


def test_agent_replies() -> None:
    assert len(AGENT_REPLIES) >= 10
    for text in AGENT_REPLIES:
        assert 25 <= len(text.split()) <= 45
        assert reply_duration_estimate_s(text) >= 9.0


def test_user_text_only_for_speech(scenarios: list[Scenario]) -> None:
    for s in scenarios:
        if s.label in SPEECH_LABELS:
            assert s.user_text, s.id
        else:
            assert s.user_text is None, s.id
    assert len({s.user_text for s in _by_label(scenarios, "interrupt")}) >= 12


def test_echo_only_spans_delays_and_gains(scenarios: list[Scenario]) -> None:
    echo_only = _by_label(scenarios, "echo_only")
    assert all(s.echo is not None and s.user_audio is None for s in echo_only)
    delays_ms = [s.echo.delay_ms for s in echo_only if s.echo]
    gains_db = [s.echo.gain_db for s in echo_only if s.echo]
    assert min(delays_ms) <= 30 and max(delays_ms) >= 440
    assert 0.0 in gains_db and min(gains_db) <= -18


def test_echo_noise_channel_and_gain_shares(scenarios: list[Scenario]) -> None:
    n = len(scenarios)
    echoes = [s.echo for s in scenarios if s.echo is not None]
    assert 0.5 <= len(echoes) / n <= 0.7
    assert 0.35 <= sum(e.rir is not None for e in echoes) / len(echoes) <= 0.65
    for e in echoes:
        assert 20 <= e.delay_ms <= 450 and -20 <= e.gain_db <= 0
    interrupts = _by_label(scenarios, "interrupt")
    assert sum(s.echo is not None for s in interrupts) >= 0.6 * len(interrupts)  # double talk
    beds = [s.noise for s in scenarios if s.noise is not None]
    assert 0.2 <= len(beds) / n <= 0.4
    assert all(5 <= b.snr_db <= 25 for b in beds)
    assert 0.2 <= sum(s.channel == "telephony" for s in scenarios) / n <= 0.4
    gains = [s.user_gain_db for s in scenarios if s.user_audio is not None]
    assert sum(g == 0 for g in gains) >= 0.8 * len(gains)
    assert all(-6 <= g <= 3 for g in gains) and any(g != 0 for g in gains)


def test_onsets(scenarios: list[Scenario]) -> None:
    interrupts = _by_label(scenarios, "interrupt")
    onsets_s = [s.user_onset_s or 0.0 for s in interrupts]
    assert sum(o < 1.0 for o in onsets_s) >= 6
    assert sum((s.user_onset_s or 0.0) + s.speech_start_s < 1.0 for s in interrupts) >= 6
    assert min(onsets_s) <= 0.3 and max(onsets_s) >= 6.0
    for s in scenarios:
        if s.user_audio is None or s.label == "interrupt":
            continue
        assert s.user_onset_s is not None and 1.0 <= s.user_onset_s <= 8.0, s.id
        # The whole event lies inside the reply.
        dur_s = sf.info(str(s.user_audio)).duration
        assert s.user_onset_s + dur_s <= reply_duration_estimate_s(s.agent_text), s.id


def test_audio_format(scenarios: list[Scenario]) -> None:
    files = {s.user_audio for s in scenarios} | {s.noise.audio for s in scenarios if s.noise}
    files |= {s.echo.rir for s in scenarios if s.echo}
    for path in filter(None, files):
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (
            16000,
            1,
            "PCM_16",
            "WAV",
        ), path


def test_speech_start_matches_the_audio(scenarios: list[Scenario]) -> None:
    frame = 160  # 10 ms
    checked = 0
    for s in scenarios:
        if s.user_audio is None:
            continue
        audio, sr_hz = sf.read(str(s.user_audio), dtype="float64")
        start = int(round(s.speech_start_s * sr_hz))
        assert start < len(audio), s.id
        if start < 3 * frame:
            continue
        before_db = 10 * np.log10(np.mean(audio[start - 3 * frame : start] ** 2) + 1e-12)
        after = audio[start : start + 30 * frame]
        n = len(after) // frame
        after_db = 10 * np.log10(np.max(np.mean(after[: n * frame].reshape(n, frame) ** 2, 1)))
        assert after_db - before_db >= 20, (s.id, before_db, after_db)
        checked += 1
    assert checked >= 25  # enough files start with room tone


def test_files_differ(scenarios: list[Scenario]) -> None:
    blobs = [Path(s.user_audio).read_bytes() for s in scenarios if s.user_audio]
    assert len(set(blobs)) == len(blobs)


def test_deterministic(built: Path, tmp_path: Path) -> None:
    # A second build (of a prefix: ``limit`` keys all randomness by scenario position) must be
    # byte-identical to the same scenarios of the first one.
    again = build_bundled_set(tmp_path, seed=0, limit=PREFIX)
    first_lines = built.read_text(encoding="utf-8").splitlines()[:PREFIX]
    assert again.read_text(encoding="utf-8").splitlines() == first_lines
    files = sorted(p.relative_to(tmp_path) for p in (tmp_path / "audio").rglob("*.wav"))
    assert len(files) >= PREFIX - 3
    for rel in files:
        assert (tmp_path / rel).read_bytes() == (built.parent / rel).read_bytes(), rel
