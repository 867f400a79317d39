"""``livekit-bargein bench``: shape of the result (fast) and the full 30 s run (benchmark)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from livekit_bargein.bench import run_bench
from livekit_bargein.cli import main

_FIGURES = ("cpu_s", "us_per_10ms", "pct_core", "thread_cpu_s", "thread_us_per_10ms",
            "thread_pct_core")
_PARTS = (
    "apm_aec", "webrtc_apm", "delay_estimator", "near_end", "glue", "silero", "engine_window"
)


def _positive_finite(x: Any) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def short_result() -> dict[str, Any]:
    # Synthetic audio: skips loading Piper, so the test stays a few seconds with the eval extra.
    return run_bench(seconds=2.0, audio="synthetic")


def test_short_run_reports_every_figure(short_result: dict[str, Any]) -> None:
    for key in ("silero_raw", "silero_plugin", "pipeline", "pipeline_listening"):
        for fig in _FIGURES:
            assert _positive_finite(short_result[key][fig]), (key, fig, short_result[key][fig])
    for part in _PARTS:
        for fig in ("cpu_s", "us_per_10ms", "pct_core"):
            value = short_result["pipeline_breakdown"][part][fig]
            assert _positive_finite(value), (part, fig, value)
    pipe = short_result["pipeline"]
    assert pipe["streams_per_core"] == math.floor(100.0 / pipe["pct_core"])
    listen = short_result["pipeline_listening"]
    assert listen["streams_per_core"] == math.floor(100.0 / listen["pct_core"])
    assert isinstance(pipe["meets_target"], bool)
    assert short_result["meta"]["audio"] == "synthetic"
    assert short_result["meta"]["audio_s"] == pytest.approx(2.0)
    json.dumps(short_result)  # the CLI writes it as JSON


def test_pipeline_costs_at_least_silero(short_result: dict[str, Any]) -> None:
    # The pipeline runs the same model on every window plus the APM, features and controller.
    assert short_result["pipeline"]["cpu_s"] >= short_result["silero_raw"]["cpu_s"]
    bd = short_result["pipeline_breakdown"]
    assert bd["webrtc_apm"]["cpu_s"] <= bd["apm_aec"]["cpu_s"]
    assert bd["delay_estimator"]["cpu_s"] <= bd["apm_aec"]["cpu_s"]
    assert 0 < bd["near_end"]["cpu_s"] <= bd["apm_aec"]["cpu_s"]


@pytest.mark.parametrize(("aec_rate_hz", "processed_hz"), [(16_000, 16_000), (None, 24_000)])
def test_a_room_rate_microphone_is_processed_at_the_options_rate(
    aec_rate_hz: int | None, processed_hz: int
) -> None:
    r = run_bench(seconds=1.0, audio="synthetic", sample_rate_hz=24_000, aec_rate_hz=aec_rate_hz)
    assert r["meta"]["sample_rate_hz"] == 24_000
    assert r["meta"]["aec_rate_hz"] == processed_hz
    resample_s = r["pipeline_breakdown"]["resample"]["cpu_s"]
    # the microphone and the reference are resampled only when the rates differ
    assert (resample_s > 0) == (processed_hz != 24_000), resample_s


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        run_bench(seconds=0)
    with pytest.raises(ValueError):
        run_bench(seconds=1, repeats=0)


@pytest.mark.benchmark
def test_bench_30s_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--seconds", "30", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    pct = result["pipeline"]["pct_core"]
    # A reported figure, not a pass/fail threshold: CPU timings on shared machines are noisy.
    assert math.isfinite(pct) and pct > 0
    assert result["meta"]["audio_s"] == pytest.approx(30.0)
    assert "pipeline" in capsys.readouterr().out


def test_cli_rate_flags(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--seconds", "1", "--rate", "24000", "--native-rate",
                 "--json", str(out)]) == 0  # fmt: skip
    meta = json.loads(out.read_text())["meta"]
    assert (meta["sample_rate_hz"], meta["aec_rate_hz"]) == (24_000, 24_000)
