"""The scenario manifest: JSON Lines, one labeled scenario per line (shared/scenario-format.md).

This module only parses and validates; it loads no audio. Errors name the file, the line and the
key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..log import logger

LABELS: tuple[str, ...] = (
    "interrupt",
    "backchannel",
    "cough",
    "throat_clear",
    "sneeze",
    "laugh",
    "breath",
    "noise",
    "background_speech",
    "echo_only",
)
CHANNELS: tuple[str, ...] = ("wideband", "telephony")
_KNOWN_KEYS = {
    "id",
    "label",
    "agent_text",
    "user_audio",
    "user_onset_s",
    "speech_start_s",
    "user_text",
    "user_gain_db",
    "echo",
    "noise",
    "channel",
}


class ManifestError(ValueError):
    """A manifest line is missing a required key or has a bad value."""

    def __init__(self, path: Path | str, line_no: int, key: str | None, message: str) -> None:
        where = f"{path}:{line_no}"
        super().__init__(f"{where}: key '{key}': {message}" if key else f"{where}: {message}")
        self.path = str(path)
        self.line_no = line_no
        self.key = key


@dataclass(frozen=True)
class EchoSpec:
    gain_db: float
    delay_ms: float
    rir: Path | None = None


@dataclass(frozen=True)
class NoiseSpec:
    audio: Path
    snr_db: float


@dataclass(frozen=True)
class Scenario:
    id: str
    label: str
    agent_text: str
    user_audio: Path | None = None
    user_onset_s: float | None = None
    speech_start_s: float = 0.0
    user_text: str | None = None
    user_gain_db: float = 0.0
    echo: EchoSpec | None = None
    noise: NoiseSpec | None = None
    channel: str = "wideband"
    line_no: int = 0


def load_manifest(path: str | Path, *, check_files: bool = True) -> list[Scenario]:
    """Parse and validate a manifest. Raises ManifestError naming the line and the key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    base = path.parent
    scenarios: list[Scenario] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ManifestError(path, line_no, None, f"not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise ManifestError(path, line_no, None, "a line must be a JSON object")
            sc = _parse(obj, path, line_no, base, check_files)
            if sc.id in seen:
                raise ManifestError(
                    path, line_no, "id", f"duplicate id '{sc.id}' (first on line {seen[sc.id]})"
                )
            seen[sc.id] = line_no
            scenarios.append(sc)
    if not scenarios:
        raise ManifestError(path, 0, None, "the manifest holds no scenario")
    return scenarios


def _parse(
    obj: dict[str, Any], path: Path, line_no: int, base: Path, check_files: bool
) -> Scenario:
    def err(key: str | None, msg: str) -> ManifestError:
        return ManifestError(path, line_no, key, msg)

    for key in obj.keys() - _KNOWN_KEYS:
        logger.warning("unknown manifest key ignored", extra={"line": line_no, "key": key})

    def req_str(key: str) -> str:
        if key not in obj:
            raise err(key, "required key is missing")
        val = obj[key]
        if not isinstance(val, str) or not val.strip():
            raise err(key, f"must be a non-empty string, got {val!r}")
        return val

    def num(key: str, val: Any, *, lo: float | None = None, hi: float | None = None) -> float:
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise err(key, f"must be a finite number, got {val!r}")
        if lo is not None and val < lo:
            raise err(key, f"must be >= {lo}, got {val}")
        if hi is not None and val > hi:
            raise err(key, f"must be <= {hi}, got {val}")
        return float(val)

    def audio_path(key: str, val: Any) -> Path:
        if not isinstance(val, str) or not val:
            raise err(key, f"must be a path string, got {val!r}")
        p = (base / val).resolve()
        if check_files and not p.is_file():
            raise err(key, f"audio file not found: {p}")
        return p

    sid = req_str("id")
    label = req_str("label")
    if label not in LABELS:
        raise err("label", f"unknown label '{label}' (expected one of {', '.join(LABELS)})")
    agent_text = req_str("agent_text")

    user_audio = user_onset = None
    if label != "echo_only" or obj.get("user_audio") is not None:
        if obj.get("user_audio") is None:
            raise err("user_audio", f"required for label '{label}'")
        user_audio = audio_path("user_audio", obj["user_audio"])
        if obj.get("user_onset_s") is None:
            raise err("user_onset_s", "required when user_audio is given")
        user_onset = num("user_onset_s", obj["user_onset_s"], lo=0.0)

    speech_start = num("speech_start_s", obj.get("speech_start_s", 0), lo=0.0)
    user_text = obj.get("user_text")
    if user_text is not None and not isinstance(user_text, str):
        raise err("user_text", f"must be a string, got {user_text!r}")
    user_gain = num("user_gain_db", obj.get("user_gain_db", 0), lo=-60.0, hi=40.0)

    echo = None
    if obj.get("echo") is not None:
        e = obj["echo"]
        if not isinstance(e, dict):
            raise err("echo", f"must be an object or null, got {e!r}")
        for sub in ("gain_db", "delay_ms"):
            if sub not in e:
                raise err(f"echo.{sub}", "required key is missing")
        echo = EchoSpec(
            gain_db=num("echo.gain_db", e["gain_db"], lo=-80.0, hi=20.0),
            delay_ms=num("echo.delay_ms", e["delay_ms"], lo=0.0, hi=5000.0),
            rir=audio_path("echo.rir", e["rir"]) if e.get("rir") is not None else None,
        )

    noise = None
    if obj.get("noise") is not None:
        n = obj["noise"]
        if not isinstance(n, dict):
            raise err("noise", f"must be an object or null, got {n!r}")
        for sub in ("audio", "snr_db"):
            if sub not in n:
                raise err(f"noise.{sub}", "required key is missing")
        noise = NoiseSpec(
            audio=audio_path("noise.audio", n["audio"]),
            snr_db=num("noise.snr_db", n["snr_db"], lo=-30.0, hi=80.0),
        )

    channel = obj.get("channel", "wideband")
    if channel not in CHANNELS:
        raise err("channel", f"must be one of {', '.join(CHANNELS)}, got {channel!r}")

    return Scenario(
        id=sid,
        label=label,
        agent_text=agent_text,
        user_audio=user_audio,
        user_onset_s=user_onset,
        speech_start_s=speech_start,
        user_text=user_text,
        user_gain_db=user_gain,
        echo=echo,
        noise=noise,
        channel=channel,
        line_no=line_no,
    )
