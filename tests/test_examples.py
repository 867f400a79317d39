"""examples/: each one runs. The offline ones replay real scenarios (one interrupt each) as
subprocesses, two real-time sessions at a time (~45 s in all); the LiveKit worker example is checked
up to its CLI (a room needs a server)."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

from livekit_bargein.eval.manifest import ManifestError, load_manifest
from livekit_bargein.eval.scenarios import build_bundled_set

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run_all(commands: dict[str, list[str]], timeout_s: float = 180.0) -> dict[str, str]:
    """Run the examples concurrently; each one's stdout (a failure shows its output)."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(EXAMPLES / cmd[0]), *cmd[1:]],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name, cmd in commands.items()
    }  # fmt: skip
    outputs = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        assert proc.returncode == 0, f"{name}:\n{out[-2000:]}{err[-4000:]}"
        outputs[name] = out
    return outputs


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def score_recordings() -> ModuleType:
    return _load("score_recordings")


@dataclass
class Runs:
    stdout: dict[str, str]
    scored_dir: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, score_recordings: ModuleType) -> Runs:
    """Every example. They replay in real time, so waiting is most of it: they run in two waves
    of two sessions each, which keeps the sessions' clocks on time on a 2-core machine."""
    # the bundled set's first scenarios: echo-only-001, backchannel-001, interrupt-001
    bundled = str(build_bundled_set(tmp_path_factory.mktemp("bundled"), limit=3))
    rec = tmp_path_factory.mktemp("rec")
    score_recordings.write_demo(rec)
    rows = (rec / "labels.csv").read_text().splitlines()
    (rec / "labels.csv").write_text("\n".join(rows[:2]) + "\n")  # the interrupt only: faster
    scored = tmp_path_factory.mktemp("scored")
    stdout = _run_all({
        "minimal": ["minimal.py", "--help"],
        "choose_profile": ["choose_profile.py", "--manifest", bundled, "--scenarios",
                           "interrupt-001", "--configs", "bargein,bargein-telephony"],
    })  # fmt: skip
    stdout |= _run_all({
        "replay_scenario": ["replay_scenario.py", bundled, "interrupt-001"],
        "score_recordings": ["score_recordings.py", str(rec), "--out", str(scored),
                             "--configs", "bargein", "--jobs", "1"],
    })  # fmt: skip
    return Runs(stdout=stdout, scored_dir=scored)


def test_minimal_worker_cli_starts(runs: Runs) -> None:
    out = runs.stdout["minimal"]
    assert "console" in out and "dev" in out


def test_choose_profile(runs: Runs) -> None:
    out = runs.stdout["choose_profile"]
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert table["onset_ms"] == ["32", "64", "48", "96"]
    assert "activation_threshold" not in table, "knobs equal in every profile are left out"
    assert "telephony, onset_ms=64, min_snr_db=6, confirm_speech_ms=600" in out
    assert "rejected:" in out and "options unchanged: True" in out
    replays = [line for line in out.splitlines() if line.split()[1:2] == ["interrupt-001"]]
    assert [r.split()[0] for r in replays] == ["bargein", "bargein-telephony"]
    # every run is scored; how fast each profile yields is the evaluator's business (and timing
    # on a shared 2-core machine), but an interruption this clear is not missed by both
    assert all(("yielded after" in r or "MISSED" in r) and "error" not in r for r in replays)
    assert any("yielded after" in r for r in replays), replays


def test_replay_scenario(runs: Runs) -> None:
    out = runs.stdout["replay_scenario"]
    rows = [line.split() for line in out.splitlines()]
    kinds = [r[2] for r in rows if len(r) > 2 and r[1] == "ms"]  # "  5190 ms  soft_yield onset..."
    # the first decision is a yield: a soft yield on the onset, or (when AEC3 blurs the onset on
    # this run's real-time timing) the transcript fallback's interrupt straight away
    assert kinds[:1] in (["soft_yield"], ["interrupt"]) and "interrupt" in kinds, out
    assert "missed: False" in out


# -- score_recordings ---------------------------------------------------------------------------


def test_speech_start_estimate(score_recordings: ModuleType) -> None:
    rate = 16_000
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1e-3, rate).astype(np.float32)  # -60 dBFS floor
    t = np.arange(rate // 2) / rate
    x[rate // 2 :] += (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    assert score_recordings.estimate_speech_start_s(x, rate) == pytest.approx(0.5, abs=0.011)
    stereo = np.stack([x, x], axis=1)
    assert score_recordings.estimate_speech_start_s(stereo, rate) == pytest.approx(0.5, abs=0.011)


def test_manifest_from_labels(score_recordings: ModuleType, tmp_path: Path) -> None:
    rate = 8_000
    x = np.zeros(rate, np.float32)
    x[rate // 4 :] = 0.2
    sf.write(tmp_path / "a.wav", x, rate)
    sf.write(tmp_path / "b.wav", np.stack([x, x], axis=1), 44_100)
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "user_text", "user_onset_s", "speech_start_s", "channel",
                    "echo_gain_db", "echo_delay_ms"])  # fmt: skip
        w.writerow(["a.wav", "interrupt", "stop", "2.5", "", "telephony", "-12", "80"])
        w.writerow(["b.wav", "cough", "", "", "0.1", "", "", ""])
    manifest = score_recordings.write_manifest(tmp_path, agent_text="Hello there.")
    a, b = (json.loads(line) for line in manifest.read_text().splitlines())
    assert a == {
        "id": "a", "label": "interrupt", "agent_text": "Hello there.", "user_audio": "a.wav",
        "user_onset_s": 2.5, "speech_start_s": 0.25, "user_text": "stop",
        "channel": "telephony", "echo": {"gain_db": -12.0, "delay_ms": 80.0},
    }  # fmt: skip
    assert b["user_onset_s"] == score_recordings.DEFAULT_ONSET_S and b["speech_start_s"] == 0.1
    assert "echo" not in b and "user_text" not in b
    assert [s.id for s in load_manifest(manifest)] == ["a", "b"]


def test_bad_label_is_reported_with_its_line(score_recordings: ModuleType, tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", np.zeros(800, np.float32), 8_000)
    (tmp_path / "labels.csv").write_text("file,label\na.wav,interrupt\na.wav,shout\n")
    with pytest.raises(ManifestError, match=r"manifest.jsonl:2: key 'label'"):
        score_recordings.write_manifest(tmp_path)


def test_score_recordings_end_to_end(runs: Runs) -> None:
    out = runs.stdout["score_recordings"]
    report = json.loads((runs.scored_dir / "report.json").read_text())
    (scenario,) = report["configs"]["bargein"]["scenarios"]
    assert scenario["id"] == "wait" and scenario["label"] == "interrupt"
    assert scenario["error"] is None and not scenario["missed"]
    assert scenario["time_to_yield_ms"] is not None and scenario["false_yields"] == 0
    assert "bargein: time to yield p50" in out and "wait" in out
