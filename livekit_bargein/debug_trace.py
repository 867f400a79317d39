"""Opt-in per-session decision trace: JSON Lines, one row per VAD window and per decision.

    with DecisionTrace(bargein, "call.jsonl"):
        ...  # run the session

Rows (``type``): one ``header`` (version, profile, options, start wall time), then ``frame`` per
32 ms window (probability, active threshold, residual echo, double talk, noise floor, state,
levels), ``decision`` per soft yield / resume / interrupt with its reason, ``options`` when they
change at runtime, ``transcript`` when a session is attached (word count only; the text only with
``include_transcripts=True``: transcripts are personal data; words quoted in decision reasons
are replaced by their count too), ``dropped`` when lines were lost and
``end`` on close. ``livekit-bargein trace FILE --out DIR`` renders it as a timeline.

Memory is bounded and a crash loses at most about a second: rows are buffered and handed to a
writer thread at least once per ``flush_every_ms`` of audio time (``t_ms``); if the writer falls
behind, whole batches are dropped and counted instead of queueing without bound.
"""

from __future__ import annotations

import atexit
import itertools
import json
import math
import os
import queue
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from .decision import Decision, words_of
from .engine import BargeIn, WindowRecord
from .log import logger
from .version import __version__

TRACE_VERSION = 1
ENV_TRACE_DIR = "LIVEKIT_BARGEIN_TRACE_DIR"
"""Directory for :meth:`DecisionTrace.from_env` (unset: no trace)."""
ENV_TRACE_TRANSCRIPTS = "LIVEKIT_BARGEIN_TRACE_TRANSCRIPTS"
"""``1``: traces made by :meth:`DecisionTrace.from_env` include transcript text."""

_Row = dict[str, Any]
_SENTINEL = None
_CLOSE_TIMEOUT_S = 5.0
_BATCH_LINES = 256  # hand-off size when rows come faster than flush_every_ms (decision storms)
_file_ids = itertools.count()
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\[[^\]]*\]")
"""What reasons quote of the caller's words (``words: 'wait stop'``, ``words=['okay']``)."""


def redact_reason(reason: str) -> str:
    """A decision reason with the caller's quoted words replaced by their count."""
    return _QUOTED.sub(lambda m: f"<{len(words_of(m.group()))} words>", reason)


def _num(x: float | None, digits: int) -> float | None:
    """Rounded for compact lines; None for unknown and non-finite values (not valid JSON)."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (frozenset, set)):
        return sorted(value)
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class DecisionTrace:
    """Writes one ``BargeIn``'s windows and decisions to ``path`` as JSON Lines.

    Listens to the engine's ``"window"`` and ``"decision"`` events; ``attach(session)`` (or
    ``session=``) adds transcript rows. Close it (or use it as a context manager) to write the
    last rows; an unclosed trace is closed at interpreter exit.
    """

    def __init__(
        self,
        bargein: BargeIn,
        path: str | os.PathLike[str],
        *,
        session: Any = None,
        include_transcripts: bool = False,
        meta: Mapping[str, Any] | None = None,
        flush_every_ms: float = 1000.0,
        max_buffered_lines: int = 8192,
    ) -> None:
        """``max_buffered_lines``: rows waiting for the writer at most (8192: ~4 minutes of
        windows), beside the batch being filled (one second, at most 256 rows); rows beyond it
        are dropped and counted."""
        if flush_every_ms <= 0 or max_buffered_lines < 1:
            raise ValueError("flush_every_ms and max_buffered_lines must be positive")
        self.path = Path(path)
        self.include_transcripts = include_transcripts
        self.flush_every_ms = flush_every_ms
        self.max_buffered_lines = max_buffered_lines
        self.frames = 0
        self.decisions = 0
        self.dropped_lines = 0
        self._bargein = bargein
        self._session: Any = None
        self._buffer: list[_Row] = []
        self._flushed_at_ms: float | None = None
        self._last_t_ms = 0.0
        self._unreported_drops = 0
        self._options = bargein.options
        self._closed = False
        self._queue: queue.Queue[list[_Row] | None] = queue.Queue()  # bounded by _pending_lines
        self._pending_lines = 0  # handed to the writer, not yet written
        self._lock = threading.Lock()

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        header: _Row = {
            "type": "header",
            "version": TRACE_VERSION,
            "package_version": __version__,
            "profile": bargein.profile,
            "options": _jsonable(asdict(bargein.options)),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "started_unix_s": round(time.time(), 3),
            "include_transcripts": include_transcripts,
            "meta": _jsonable(dict(meta or {})),
        }
        # the header is on disk before any audio: even an immediate crash leaves a readable file
        self._file.write(json.dumps(header) + "\n")
        self._file.flush()
        self._writer = threading.Thread(
            target=self._write_loop, name=f"bargein-trace-{next(_file_ids)}", daemon=True
        )
        self._writer.start()
        bargein.on("window", self._on_window)
        bargein.on("decision", self._on_decision)
        if session is not None:
            self.attach(session)
        atexit.register(self.close)

    @classmethod
    def from_env(cls, bargein: BargeIn, *, session: Any = None) -> DecisionTrace | None:
        """A trace in ``$LIVEKIT_BARGEIN_TRACE_DIR`` (one file per session), or None if unset."""
        directory = os.environ.get(ENV_TRACE_DIR)
        if not directory:
            return None
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"bargein-{stamp}-{os.getpid()}-{next(_file_ids)}.jsonl"
        return cls(
            bargein,
            Path(directory) / name,
            session=session,
            include_transcripts=os.environ.get(ENV_TRACE_TRANSCRIPTS) == "1",
        )

    def attach(self, session: Any) -> None:
        """Also record the session's transcripts (text only if ``include_transcripts``)."""
        if self._session is None and not self._closed:
            self._session = session
            session.on("user_input_transcribed", self._on_transcribed)

    # -- events (on the engine's thread) ---------------------------------------------------------

    def _on_window(self, rec: WindowRecord) -> None:
        obs, d = rec.observation, rec.decision
        if self._bargein.options is not self._options:
            self._options = self._bargein.options
            self._add(
                {
                    "type": "options",
                    "t_ms": _num(obs.t_ms, 1),
                    "profile": self._bargein.profile,
                    "options": _jsonable(asdict(self._options)),
                },
                obs.t_ms,
            )
        self.frames += 1
        self._add(
            {
                "type": "frame",
                "t_ms": _num(obs.t_ms, 1),
                "prob": _num(obs.speech_prob, 3),
                "threshold": _num(d.threshold, 3),
                "residual_echo_db": _num(obs.residual_echo_db, 1),
                "double_talk": obs.double_talk,
                "noise_floor_db": _num(rec.noise_floor_db, 1),
                "speech_level_db": _num(rec.speech_level_db, 1),
                "background_db": _num(rec.background_db, 1),
                "state": d.state.value,
                "speaking": d.speaking,
                "agent_audible": obs.agent_audible,
                "level_db": _num(obs.level_db, 1),
                "raw_level_db": _num(obs.raw_level_db, 1),
                "ref_level_db": _num(self._bargein.reference_level_db, 1),
                "echo_delay_ms": _num(self._bargein.echo_delay_ms, 1),
                "echo_path_gain_db": _num(self._bargein.echo_path_gain_db, 1),
                "echo_likeness": _num(obs.echo_likeness, 2),
                "aec_unsettled": obs.aec_unsettled,
                "near_end_over_echo": obs.near_end_over_echo,
                "near_end_share": _num(obs.near_end_share, 3),
                "near_end_prob": _num(obs.near_end_prob, 3),
            },
            obs.t_ms,
        )

    def _on_decision(self, d: Decision) -> None:
        self.decisions += 1
        self._add(
            {
                "type": "decision",
                "t_ms": _num(d.t_ms, 1),
                "action": d.action.value,
                "reason": d.reason if self.include_transcripts else redact_reason(d.reason),
                "state": d.state.value,
                "threshold": _num(d.threshold, 3),
                "speech_ms": _num(d.speech_ms, 1),
                "silence_ms": _num(d.silence_ms, 1),
            },
            d.t_ms,
        )

    def _on_transcribed(self, ev: Any) -> None:
        text = str(getattr(ev, "transcript", "") or "")
        row: _Row = {
            "type": "transcript",
            "t_ms": _num(self._last_t_ms, 1),  # transcripts arrive between windows
            "final": bool(getattr(ev, "is_final", False)),
            "n_words": len(words_of(text)),
        }
        if self.include_transcripts:
            row["text"] = text
        self._add(row, self._last_t_ms)

    # -- buffering -------------------------------------------------------------------------------

    def _add(self, row: _Row, t_ms: float) -> None:
        if self._closed:
            return
        self._last_t_ms = max(self._last_t_ms, t_ms)
        self._buffer.append(row)
        if self._flushed_at_ms is None:
            self._flushed_at_ms = t_ms
        if t_ms - self._flushed_at_ms >= self.flush_every_ms or len(self._buffer) >= min(
            _BATCH_LINES, self.max_buffered_lines
        ):
            self._hand_off(force=False)
            self._flushed_at_ms = t_ms

    def _hand_off(self, *, force: bool) -> None:
        batch, self._buffer = self._buffer, []
        if self._unreported_drops:
            batch.insert(
                0,
                {
                    "type": "dropped",
                    "t_ms": _num(self._last_t_ms, 1),
                    "lines": self._unreported_drops,
                },
            )
        if not batch:
            return
        with self._lock:
            fits = force or self._pending_lines + len(batch) <= self.max_buffered_lines
            if fits:
                self._pending_lines += len(batch)
        if not fits:
            # the writer is behind: drop this batch, report the count with the next one
            lost = sum(1 for r in batch if r["type"] != "dropped")
            self.dropped_lines += lost
            self._unreported_drops += lost
            return
        self._queue.put(batch)
        self._unreported_drops = 0

    def _write_loop(self) -> None:
        try:
            while (batch := self._queue.get()) is not _SENTINEL:
                self._file.write("".join(json.dumps(r) + "\n" for r in batch))
                self._file.flush()
                with self._lock:
                    self._pending_lines -= len(batch)
        except Exception:  # a full disk must not take the call down
            logger.exception("decision trace writer failed", extra={"path": str(self.path)})
            while self._queue.get() is not _SENTINEL:  # keep draining so close() returns
                pass
        finally:
            self._file.close()

    # -- closing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Write the buffered rows and an ``end`` row, and stop listening. Idempotent."""
        if self._closed:
            return
        self._bargein.off("window", self._on_window)
        self._bargein.off("decision", self._on_decision)
        if self._session is not None:
            self._session.off("user_input_transcribed", self._on_transcribed)
        self._buffer.append(
            {
                "type": "end",
                "t_ms": _num(self._last_t_ms, 1),
                "frames": self.frames,
                "decisions": self.decisions,
                "dropped_lines": self.dropped_lines,
            }
        )
        self._hand_off(force=True)
        self._closed = True
        self._queue.put(_SENTINEL)
        self._writer.join(timeout=_CLOSE_TIMEOUT_S)
        if self._writer.is_alive():
            logger.warning("decision trace writer stuck", extra={"path": str(self.path)})
        atexit.unregister(self.close)

    def __enter__(self) -> DecisionTrace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- reading ---------------------------------------------------------------------------------------


@dataclass
class TraceData:
    """A decision trace read back (see :func:`read_trace`)."""

    header: _Row
    frames: list[_Row] = field(default_factory=list)
    decisions: list[_Row] = field(default_factory=list)
    transcripts: list[_Row] = field(default_factory=list)
    option_changes: list[_Row] = field(default_factory=list)
    dropped_lines: int = 0
    end: _Row | None = None
    """The ``end`` row; None when the writer never closed (crash, or still running)."""
    truncated: bool = False
    """The last line was cut mid-write and skipped."""


def read_trace(path: str | os.PathLike[str]) -> TraceData:
    """Read a decision trace; a cut last line (crash mid-write) is skipped, not an error."""
    path = Path(path)
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows: list[_Row] = []
    truncated = False
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                truncated = True
                break
            raise ValueError(f"{path}:{i + 1}: not a JSON line") from None
        if not isinstance(row, dict) or "type" not in row:
            raise ValueError(f"{path}:{i + 1}: not a trace row")
        rows.append(row)
    if not rows or rows[0]["type"] != "header":
        raise ValueError(f"{path}: not a decision trace (no header row)")
    if rows[0].get("version") != TRACE_VERSION:
        raise ValueError(
            f"{path}: trace version {rows[0].get('version')}, this reads {TRACE_VERSION}"
        )
    data = TraceData(header=rows[0], truncated=truncated)
    lists = {
        "frame": data.frames,
        "decision": data.decisions,
        "transcript": data.transcripts,
        "options": data.option_changes,
    }
    for row in rows[1:]:
        kind = row["type"]
        if kind in lists:
            lists[kind].append(row)
        elif kind == "dropped":
            data.dropped_lines += int(row.get("lines", 0))
        elif kind == "end":
            data.end = row
            data.dropped_lines = max(data.dropped_lines, int(row.get("dropped_lines", 0)))
        # unknown kinds: a newer writer; skipped
    return data
