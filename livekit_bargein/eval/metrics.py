"""Scoring of scenario traces (shared/scenario-format.md, "Metrics").

Pure functions over :class:`~livekit_bargein.eval.trace.ScenarioTrace`: no asyncio, no livekit.
Everything is sample-exact in the simulation clock; a tick is ``trace.tick_samples`` samples.

Vocabulary:

- a *silence run* is a maximal run of ticks with ``played_samples == 0`` inside the first reply
  (after its first audible tick, before its DONE tick);
- a *yield* is a silence run that holds at least one PAUSED or CLEARED tick and lasts >= 100 ms
  (a run holding CLEARED that never resumes lasts to the end of the trace and is always a yield:
  the reply was stopped). UNDERRUN-only runs are TTS starvation, reported as ``underrun_ms``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .trace import ContextRecord, ScenarioTrace, SpeakerState

YIELD_MIN_MS = 100.0
"""A pause or stop shorter than this is not a yield."""
ANSWER_WINDOW_MS = 1500.0
"""An interrupt not yielded to within this long after the first voiced sample is missed."""

INTERRUPT = "interrupt"
BACKCHANNEL = "backchannel"

_PLAYING = SpeakerState.PLAYING.value
_PAUSED = SpeakerState.PAUSED.value
_UNDERRUN = SpeakerState.UNDERRUN.value
_CLEARED = SpeakerState.CLEARED.value
_DONE = SpeakerState.DONE.value


@dataclass(frozen=True)
class Yield:
    """Agent audio paused or stopped for >= 100 ms while the reply still had audio to play."""

    start_sample: int
    """Sample right after the last agent sample played before the silence."""
    end_sample: int | None
    """First sample of the tick where playing resumed; None if it never resumed."""
    kind: str
    """"stop" (holds a CLEARED tick), "resumed" (a pause that played again) or "pause"."""
    first_tick: int
    """First silent tick of the run."""
    end_tick: int
    """Tick after the run (the resuming tick, or the trace length)."""

    @property
    def resumed(self) -> bool:
        return self.end_sample is not None

    def in_progress_at(self, sample: int) -> bool:
        return self.start_sample <= sample and (self.end_sample is None or sample < self.end_sample)


@dataclass(frozen=True)
class _Scan:
    yields: list[Yield]
    underrun_samples: int
    start_tick: int | None
    """First audible tick of the reply (None: the reply never played)."""
    done_tick: int | None
    """First DONE tick after the start (None: not done within the trace)."""


def _played(trace: ScenarioTrace, i: int) -> int:
    return trace.played_samples[i] if i < len(trace.played_samples) else 0


def _scan(trace: ScenarioTrace) -> _Scan:
    states = trace.speaker_states
    n = len(states)
    tick = trace.tick_samples
    min_samples = YIELD_MIN_MS * trace.sample_rate_hz / 1000.0

    first = 0 if trace.first_audible_sample is None else trace.first_audible_sample // tick
    start = next((i for i in range(max(first, 0), n) if _played(trace, i) > 0), None)
    if start is None:
        return _Scan([], 0, None, None)
    done = next((i for i in range(start, n) if states[i] == _DONE), None)
    reply_end = n if done is None else done

    yields: list[Yield] = []
    underrun = 0
    i = start
    while i < reply_end:
        if _played(trace, i) > 0:
            i += 1
            continue
        run_first = i
        while i < reply_end and _played(trace, i) == 0:
            i += 1
        run_end = i  # exclusive
        run_states = set(states[run_first:run_end])
        has_clear = _CLEARED in run_states
        start_sample = (run_first - 1) * tick + _played(trace, run_first - 1)
        resumed = run_end < reply_end  # the loop only stops early on a played tick
        if resumed:
            end_sample: int | None = run_end * tick
            duration = run_end * tick - start_sample
        elif done is not None and not has_clear:
            # Silence right before DONE: the reply had no audio left to play, not a yield.
            continue
        else:
            # Never resumed: the silence lasts to the end of the trace.
            end_sample = None
            duration = n * tick - start_sample
        if has_clear or _PAUSED in run_states:
            # A stop that never resumed counts even when the trace ends within 100 ms of it.
            if duration >= min_samples or (has_clear and not resumed):
                kind = "stop" if has_clear else ("resumed" if resumed else "pause")
                yields.append(Yield(start_sample, end_sample, kind, run_first, run_end))
        elif run_states == {_UNDERRUN}:
            underrun += duration
    return _Scan(yields, underrun, start, done)


def find_yields(trace: ScenarioTrace) -> list[Yield]:
    """The yields of the trace's first reply, in time order."""
    return _scan(trace).yields


def underrun_ms(trace: ScenarioTrace) -> float:
    """Total length of the UNDERRUN-only silence runs inside the reply (TTS starvation)."""
    return _scan(trace).underrun_samples * 1000.0 / trace.sample_rate_hz


def agent_audio_samples(trace: ScenarioTrace) -> int:
    return int(sum(trace.played_samples))


# --- context ---------------------------------------------------------------------------------

_APOSTROPHES = re.compile(r"['\u2019]")
_NON_WORD = re.compile(r"[^\w\s]")


def normalize_words(text: str) -> list[str]:
    """Lowercase, strip punctuation, split on whitespace.

    Apostrophes are dropped ("don't" -> "dont") so a contraction stays one word; other
    punctuation becomes a space so a split inside "well-known" still rejoins equal.
    """
    text = _APOSTROPHES.sub("", text.lower())
    return _NON_WORD.sub(" ", text).split()


def _within_one_word(said: list[str], heard: list[str]) -> bool:
    # Equal, or one word more or less at the end (a word cut at the stop boundary).
    return said == heard or said == heard[:-1] or said[:-1] == heard


def context_preserved(ctx: ContextRecord | None) -> bool:
    """The interrupted message holds what was heard (within one word) and keeps the unsaid tail."""
    if ctx is None or ctx.message_text is None or ctx.message_interrupted is not True:
        return False
    if ctx.heard_text is None or ctx.unspoken_tail is None:
        return False
    said = normalize_words(ctx.message_text)
    if not _within_one_word(said, normalize_words(ctx.heard_text)):
        return False
    rejoined = normalize_words(ctx.message_text + " " + ctx.unspoken_tail)
    return rejoined == normalize_words(ctx.full_reply_text)


# --- per scenario ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _InterruptScore:
    answer: Yield | None
    time_to_yield_ms: float | None
    measured: bool
    unmeasured_reason: str | None
    missed: bool | None


def _score_interrupt(trace: ScenarioTrace, scan: _Scan) -> _InterruptScore:
    voiced = trace.user_voiced_sample
    if voiced is None:
        voiced = trace.user_onset_sample  # speech_start_s defaults to 0
    if voiced is None:
        return _InterruptScore(None, None, False, "no_voiced_sample", None)
    tick = trace.tick_samples
    rate = trace.sample_rate_hz
    window_end = voiced + round(ANSWER_WINDOW_MS * rate / 1000.0)

    # A yield that began more than a tick before V and still silenced the agent at V.
    prior = next(
        (y for y in scan.yields if y.start_sample < voiced - tick and y.in_progress_at(voiced)),
        None,
    )
    # The first yield starting in [V, V + 1.5 s]; a start within the tick before V is tolerated
    # because the last played tick may be partial.
    answer = next(
        (y for y in scan.yields if voiced - tick <= y.start_sample <= window_end),
        None,
    )

    voiced_tick = voiced // tick
    reason: str | None = None
    if prior is not None:
        reason = "yield_in_progress"
    elif scan.start_tick is None or voiced_tick < scan.start_tick:
        reason = "not_started"
    elif scan.done_tick is not None and voiced_tick >= scan.done_tick:
        reason = "reply_done"
    elif voiced_tick >= len(trace.speaker_states):
        reason = "trace_ended"
    measured = reason is None

    ttfy_ms = None
    if measured and answer is not None:
        ttfy_ms = max(0, answer.start_sample - voiced) * 1000.0 / rate
    # Missed: the agent was not silent 1.5 s after V and had not started yielding by then.
    # A reply that finished before then has no yield in progress, so it is missed too.
    missed = answer is None and not any(y.in_progress_at(window_end) for y in scan.yields)
    return _InterruptScore(answer, ttfy_ms, measured, reason, missed)


STAGES = ("detect", "stop_audio", "cancel_llm", "tag_context")
"""Per-stage latencies of an answered interrupt (the seed's budget: ~200 / 50 / 50 / 10 ms)."""


def _stages_ms(trace: ScenarioTrace, ir: _InterruptScore) -> dict[str, float | None] | None:
    """detect: first voiced sample → the speaker is told to stop (pause or clear);
    stop_audio: that command → the last agent sample played; cancel_llm and tag_context: the
    reply's audio cleared → its LLM stream closed / its message in the chat context."""
    if not ir.measured or ir.answer is None:
        return None
    voiced = trace.user_voiced_sample
    if voiced is None:
        voiced = trace.user_onset_sample
    assert voiced is not None  # measured implies a voiced sample
    rate = trace.sample_rate_hz
    command = next(
        (
            int(e["sample"])
            for e in trace.events
            if e.get("kind") in ("pause", "clear")
            and int(e["sample"]) >= voiced - trace.tick_samples
        ),
        None,
    )
    if command is None or command > ir.answer.start_sample:
        command = ir.answer.start_sample  # stopped by the reply's end, not by a command
    return {
        "detect": max(0, command - voiced) * 1000.0 / rate,
        "stop_audio": max(0, ir.answer.start_sample - command) * 1000.0 / rate,
        "cancel_llm": trace.llm_cancel_after_stop_ms,
        "tag_context": trace.context_after_stop_ms,
    }


def _rel_ms(sample: int | None, t0: int, rate: int) -> float | None:
    return None if sample is None else (sample - t0) * 1000.0 / rate


def score_scenario(trace: ScenarioTrace) -> dict[str, Any]:
    """Per-scenario result (json-serialisable)."""
    scan = _scan(trace)
    rate = trace.sample_rate_hz
    t0 = trace.first_audible_sample or 0
    is_interrupt = trace.label == INTERRUPT

    if is_interrupt:
        ir = _score_interrupt(trace, scan)
        false_yields = [y for y in scan.yields if y is not ir.answer]
    else:
        ir = _InterruptScore(None, None, False, None, None)
        false_yields = list(scan.yields)

    return {
        "id": trace.scenario_id,
        "label": trace.label,
        "yields": [
            {
                "start_ms": _rel_ms(y.start_sample, t0, rate),
                "end_ms": _rel_ms(y.end_sample, t0, rate),
                "kind": y.kind,
                "false": y is not ir.answer,
            }
            for y in scan.yields
        ],
        "time_to_yield_ms": ir.time_to_yield_ms,
        "measured": ir.measured,
        "unmeasured_reason": ir.unmeasured_reason,
        "missed": ir.missed,
        "false_yields": len(false_yields),
        "reply_completed": trace.reply_completed,
        "context_preserved": context_preserved(trace.context) if is_interrupt else None,
        "stages_ms": _stages_ms(trace, ir) if is_interrupt else None,
        "underrun_ms": scan.underrun_samples * 1000.0 / rate,
        "agent_audio_ms": agent_audio_samples(trace) * 1000.0 / rate,
        "llm_tokens_after_cancel": trace.llm_tokens_after_cancel,
        "max_tick_lag_ms": trace.max_tick_lag_ms,
        "error": trace.error,
    }


# --- per configuration -----------------------------------------------------------------------


def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def percentile_summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """{"p50", "p95", "max", "n"} with numpy's linear interpolation (None values when n = 0)."""
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    arr = np.asarray(values, dtype=float)
    p50, p95 = np.percentile(arr, [50, 95], method="linear")
    return {"p50": float(p50), "p95": float(p95), "max": float(arr.max()), "n": len(values)}


def compute_metrics(
    traces: Sequence[ScenarioTrace], scores: Sequence[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The metrics dict of one configuration.

    Traces with an ``error`` are counted in ``errors`` and ``n_scenarios`` but left out of every
    other metric: a harness failure says nothing about the agent's behaviour.
    ``scores`` may pass the ``score_scenario`` results already computed for ``traces``.
    """
    if scores is None:
        scores = [score_scenario(t) for t in traces]
    pairs = [(t, s) for t, s in zip(traces, scores, strict=True) if t.error is None]
    ok = [s for _, s in pairs]
    interrupts = [s for s in ok if s["label"] == INTERRUPT]
    backchannels = [s for s in ok if s["label"] == BACKCHANNEL]

    agent_samples = sum(agent_audio_samples(t) for t, _ in pairs)
    agent_min = sum(agent_audio_samples(t) / t.sample_rate_hz for t, _ in pairs) / 60.0
    false_total = sum(s["false_yields"] for s in ok)

    labels = sorted({t.label for t in traces})
    false_yield_rate = {
        label: _rate([s["false_yields"] > 0 for s in ok if s["label"] == label]) for label in labels
    }
    tokens = [s["llm_tokens_after_cancel"] for s in interrupts]

    return {
        "n_scenarios": len(traces),
        "errors": sum(t.error is not None for t in traces),
        "agent_audio_min": agent_min,
        "time_to_yield_ms": percentile_summary(
            [s["time_to_yield_ms"] for s in interrupts if s["time_to_yield_ms"] is not None]
        ),
        "interrupts_measured": sum(s["measured"] for s in interrupts),
        "time_to_yield_unmeasured": sum(not s["measured"] for s in interrupts),
        "missed_interrupt_rate": _rate(
            [s["missed"] for s in interrupts if s["missed"] is not None]
        ),
        "false_yields": false_total,
        "false_yields_per_agent_min": false_total / agent_min if agent_samples > 0 else None,
        "false_yield_rate": false_yield_rate,
        "backchannel_resume_rate": _rate([s["reply_completed"] for s in backchannels]),
        "backchannel_pause_rate": _rate([len(s["yields"]) > 0 for s in backchannels]),
        "context_preservation_rate": _rate([bool(s["context_preserved"]) for s in interrupts]),
        "stage_latency_ms": {
            stage: percentile_summary(
                [
                    v
                    for s in interrupts
                    if s.get("stages_ms")
                    and (v := s["stages_ms"].get(stage)) is not None
                ]
            )
            for stage in STAGES
        },
        "llm_tokens_after_cancel": {
            "mean": float(np.mean(tokens)) if tokens else None,
            "max": max(tokens) if tokens else None,
        },
        "underrun_ms": sum(s["underrun_ms"] for s in ok),
        "max_tick_lag_ms": max((t.max_tick_lag_ms for t in traces), default=0.0),
    }
