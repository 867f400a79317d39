from __future__ import annotations

import json

import pytest

from livekit_bargein.eval.metrics import (
    compute_metrics,
    context_preserved,
    find_yields,
    normalize_words,
    score_scenario,
    underrun_ms,
)
from livekit_bargein.eval.trace import (
    SIM_RATE_HZ,
    TICK_SAMPLES,
    ContextRecord,
    ScenarioTrace,
    WordTiming,
)

MS = SIM_RATE_HZ // 1000  # samples per ms


def build(
    desc: str,
    *,
    label: str = "interrupt",
    voiced_ms: float | None = None,
    sid: str = "s",
    **kw: object,
) -> ScenarioTrace:
    """A trace from e.g. "20 pending, 300 playing, 15 paused, 1 playing@80, 100 playing, done".

    Counts are ticks; "playing@N" plays N samples in each of those ticks (default: a full tick);
    a bare "done" is 5 DONE ticks and sets reply_completed. ``voiced_ms`` is relative to the first
    audible sample.
    """
    states: list[str] = []
    played: list[int] = []
    for part in desc.split(","):
        words = part.split()
        count, state = (5, words[0]) if len(words) == 1 else (int(words[0]), words[1])
        state, _, n = state.partition("@")
        per_tick = int(n) if n else (TICK_SAMPLES if state == "playing" else 0)
        states += [state] * count
        played += [per_tick] * count
    first = next(i for i, p in enumerate(played) if p > 0)
    first_audible = first * TICK_SAMPLES + (TICK_SAMPLES - played[first])
    fields: dict = {
        "reply_completed": "done" in states,
        "first_audible_sample": first_audible,
    }
    if voiced_ms is not None:
        fields["user_voiced_sample"] = first_audible + round(voiced_ms * MS)
        fields["user_onset_sample"] = fields["user_voiced_sample"]
    fields.update(kw)
    return ScenarioTrace(
        scenario_id=sid,
        label=label,
        config="test",
        speaker_states=states,
        played_samples=played,
        **fields,
    )


# --- yields ----------------------------------------------------------------------------------


def test_clear_interrupt_exact_time_to_yield() -> None:
    # Playing ticks 20..119, tick 120 plays 80 samples, then cleared to the end of the trace.
    tr = build("20 pending, 100 playing, 1 playing@80, 30 cleared", voiced_ms=0)
    tr.user_voiced_sample = 70 * TICK_SAMPLES + 40
    (y,) = find_yields(tr)
    assert y.start_sample == 120 * TICK_SAMPLES + 80
    assert y.end_sample is None and y.kind == "stop"
    s = score_scenario(tr)
    assert s["time_to_yield_ms"] == pytest.approx((120 * 160 + 80 - (70 * 160 + 40)) / 16)
    assert s["time_to_yield_ms"] == pytest.approx(502.5)
    assert s["measured"] and s["missed"] is False and s["false_yields"] == 0
    assert s["yields"] == [{"start_ms": 1005.0, "end_ms": None, "kind": "stop", "false": False}]


def test_backchannel_pause_resumes_is_false_yield_and_completed() -> None:
    tr = build("10 pending, 100 playing, 30 paused, 100 playing, done", label="backchannel")
    (y,) = find_yields(tr)
    assert y.kind == "resumed" and y.resumed
    assert (y.end_sample - y.start_sample) / MS == 300
    s = score_scenario(tr)
    assert s["yields"][0]["start_ms"] == 1000 and s["yields"][0]["end_ms"] == 1300
    assert s["false_yields"] == 1 and s["reply_completed"]
    assert s["missed"] is None and s["context_preserved"] is None
    m = compute_metrics([tr])
    assert m["backchannel_resume_rate"] == 1.0
    assert m["backchannel_pause_rate"] == 1.0
    assert m["false_yield_rate"] == {"backchannel": 1.0}
    assert m["false_yields"] == 1


def test_underrun_gap_is_not_a_yield() -> None:
    tr = build("100 playing, 40 underrun, 100 playing, done", label="noise")
    assert find_yields(tr) == []
    assert underrun_ms(tr) == 400
    m = compute_metrics([tr])
    assert m["underrun_ms"] == 400 and m["false_yields"] == 0
    assert m["false_yield_rate"] == {"noise": 0.0}


def test_short_pause_is_not_a_yield_but_100ms_is() -> None:
    assert find_yields(build("100 playing, 5 paused, 100 playing, done", label="cough")) == []
    (y,) = find_yields(build("100 playing, 10 paused, 100 playing, done", label="cough"))
    assert y.kind == "resumed"


def test_partial_tick_counts_toward_pause_length() -> None:
    # 9 silent ticks plus the 100 unplayed samples of the previous tick: 96.25 ms, not a yield.
    tr = build("100 playing, 1 playing@60, 9 paused, 100 playing, done", label="laugh")
    assert find_yields(tr) == []
    # 10 silent ticks after a partial tick: 106.25 ms.
    tr = build("100 playing, 1 playing@60, 10 paused, 100 playing, done", label="laugh")
    (y,) = find_yields(tr)
    assert (y.end_sample - y.start_sample) / MS == pytest.approx(106.25)


def test_silence_before_done_is_not_a_yield() -> None:
    assert find_yields(build("100 playing, 20 paused, done", label="noise")) == []


def test_pause_truncated_by_trace_end() -> None:
    assert find_yields(build("100 playing, 5 paused", label="noise")) == []
    (y,) = find_yields(build("100 playing, 12 paused", label="noise"))
    assert y.kind == "pause" and y.end_sample is None


def test_cleared_stop_at_end_of_trace_counts_even_if_short() -> None:
    tr = build("100 playing, 3 cleared", voiced_ms=950)
    (y,) = find_yields(tr)
    assert y.kind == "stop" and y.start_sample == 100 * TICK_SAMPLES
    s = score_scenario(tr)
    assert s["time_to_yield_ms"] == pytest.approx(50.0) and s["missed"] is False


def test_pause_then_clear_is_a_stop() -> None:
    (y,) = find_yields(build("100 playing, 4 paused, 2 cleared"))
    assert y.kind == "stop"


# --- interrupts ------------------------------------------------------------------------------


def test_false_yield_in_progress_at_voiced_onset_is_unmeasured() -> None:
    # Paused at 1.0 s; the user speaks at 1.2 s while the agent is already silent.
    tr = build("100 playing, 50 paused, 10 playing, 20 cleared", voiced_ms=1200)
    ys = find_yields(tr)
    assert [y.kind for y in ys] == ["resumed", "stop"]
    s = score_scenario(tr)
    assert not s["measured"] and s["unmeasured_reason"] == "yield_in_progress"
    assert s["time_to_yield_ms"] is None
    assert s["missed"] is False  # the stop at 1.6 s answered within 1.5 s
    assert s["false_yields"] == 1
    assert [y["false"] for y in s["yields"]] == [True, False]
    m = compute_metrics([tr])
    assert m["time_to_yield_unmeasured"] == 1 and m["interrupts_measured"] == 0
    assert m["time_to_yield_ms"]["n"] == 0 and m["time_to_yield_ms"]["p50"] is None
    assert m["false_yield_rate"] == {"interrupt": 1.0}


def test_false_yield_that_ended_before_voiced_onset() -> None:
    tr = build("50 playing, 20 paused, 50 playing, 20 cleared", voiced_ms=1000)
    s = score_scenario(tr)
    assert s["measured"] and s["time_to_yield_ms"] == pytest.approx(200.0)
    assert s["false_yields"] == 1 and s["missed"] is False


def test_missed_interrupt_still_playing() -> None:
    tr = build("300 playing, done", voiced_ms=500)
    s = score_scenario(tr)
    assert s["measured"] and s["missed"] is True and s["time_to_yield_ms"] is None
    assert compute_metrics([tr])["missed_interrupt_rate"] == 1.0


def test_reply_done_before_window_is_missed() -> None:
    tr = build("100 playing, done", voiced_ms=500)
    s = score_scenario(tr)
    assert s["missed"] is True and s["measured"]


def test_late_yield_is_missed_and_false() -> None:
    # Stops 2 s after the voiced onset: outside the 1.5 s window.
    tr = build("250 playing, 20 cleared", voiced_ms=500)
    s = score_scenario(tr)
    assert s["missed"] is True and s["false_yields"] == 1


def test_yield_after_answer_is_false() -> None:
    tr = build("100 playing, 30 paused, 50 playing, 20 cleared", voiced_ms=900)
    s = score_scenario(tr)
    assert s["time_to_yield_ms"] == pytest.approx(100.0)
    assert s["false_yields"] == 1 and [y["false"] for y in s["yields"]] == [False, True]


def test_yield_starting_in_tick_before_voiced_is_tolerated() -> None:
    # The agent's last samples end 40 samples into tick 100; the user's voice starts at sample 100.
    tr = build("100 playing, 1 playing@40, 20 cleared")
    tr.user_voiced_sample = 100 * TICK_SAMPLES + 100
    s = score_scenario(tr)
    assert s["measured"] and s["time_to_yield_ms"] == 0.0 and s["false_yields"] == 0


def test_voiced_before_reply_started_is_unmeasured() -> None:
    tr = build("50 pending, 100 playing, 20 cleared")
    tr.user_voiced_sample = 10 * TICK_SAMPLES
    s = score_scenario(tr)
    assert not s["measured"] and s["unmeasured_reason"] == "not_started"


# --- context ---------------------------------------------------------------------------------

FULL = "Your appointment is on Tuesday, at three o'clock. Anything else?"


def ctx(message: str | None, heard: str, tail: str | None, interrupted: bool = True):
    return ContextRecord(
        full_reply_text=FULL,
        message_text=message,
        message_interrupted=interrupted,
        unspoken_tail=tail,
        heard_text=heard,
    )


def test_normalize_words() -> None:
    assert normalize_words("It's Tuesday, at 3 -- OK?") == ["its", "tuesday", "at", "3", "ok"]


def test_context_preserved_exact() -> None:
    c = ctx(
        "Your appointment is on",
        "your appointment is on",
        "Tuesday, at three o'clock. Anything else?",
    )
    assert context_preserved(c)


def test_context_off_by_one_word() -> None:
    tail_after_on = "Tuesday, at three o'clock. Anything else?"
    # message has one word more than heard (the cut word), and one word less
    assert context_preserved(
        ctx(
            "Your appointment is on Tuesday,",
            "Your appointment is on",
            "at three o'clock. Anything else?",
        )
    )
    assert context_preserved(
        ctx("Your appointment is", "Your appointment is on", "on " + tail_after_on)
    )


def test_context_off_by_two_words() -> None:
    assert not context_preserved(
        ctx(
            "Your appointment",
            "Your appointment is on",
            "is on Tuesday, at three o'clock. Anything else?",
        )
    )
    # a differing word that is not at the end
    assert not context_preserved(
        ctx(
            "Your meeting is on",
            "Your appointment is on",
            "Tuesday, at three o'clock. Anything else?",
        )
    )


def test_context_tail_missing_or_wrong() -> None:
    assert not context_preserved(ctx("Your appointment is on", "Your appointment is on", None))
    assert not context_preserved(
        ctx("Your appointment is on", "Your appointment is on", "Tuesday.")
    )
    assert not context_preserved(
        ctx(
            "Your appointment is on",
            "Your appointment is on",
            "Tuesday, at three o'clock. Anything else?",
            interrupted=False,
        )
    )
    assert not context_preserved(None)
    assert not context_preserved(ctx(None, "Your appointment is on", "x"))


def test_context_rate_over_interrupts() -> None:
    good = ctx(
        "Your appointment is on",
        "your appointment is on",
        "Tuesday, at three o'clock. Anything else?",
    )
    traces = [
        build("100 playing, 20 cleared", voiced_ms=900, sid="a", context=good),
        build("100 playing, 20 cleared", voiced_ms=900, sid="b"),  # no context record
        build("100 playing, done", label="backchannel", sid="c", context=good),
    ]
    assert score_scenario(traces[0])["context_preserved"] is True
    assert score_scenario(traces[1])["context_preserved"] is False
    assert compute_metrics(traces)["context_preservation_rate"] == 0.5


# --- per config ------------------------------------------------------------------------------


def test_percentiles_over_several_traces() -> None:
    ttfys = [100, 200, 300, 400, 1000]
    traces = [build("200 playing, 20 cleared", voiced_ms=2000 - t, sid=f"i{t}") for t in ttfys]
    m = compute_metrics(traces)
    assert m["time_to_yield_ms"] == {
        "p50": pytest.approx(300.0),
        "p95": pytest.approx(880.0),  # 400 + 0.8 * (1000 - 400)
        "max": pytest.approx(1000.0),
        "n": 5,
    }
    assert m["interrupts_measured"] == 5 and m["time_to_yield_unmeasured"] == 0
    assert m["missed_interrupt_rate"] == 0.0


def test_per_label_rates_and_false_yields_per_minute() -> None:
    traces = [
        build("300 playing, 30 paused, 300 playing, done", label="backchannel", sid="b1"),
        build("600 playing, done", label="backchannel", sid="b2"),
        build("600 playing, done", label="cough", sid="c1"),
        build(
            "200 playing, 20 paused, 200 playing, 20 paused, 200 playing, done",
            label="noise",
            sid="n1",
        ),
        build("100 playing, 20 cleared", voiced_ms=900, sid="i1", llm_tokens_after_cancel=4),
        build("100 playing, 20 cleared", voiced_ms=900, sid="i2", llm_tokens_after_cancel=0),
    ]
    m = compute_metrics(traces)
    assert m["false_yield_rate"] == {
        "backchannel": 0.5,
        "cough": 0.0,
        "interrupt": 0.0,
        "noise": 1.0,
    }
    assert m["false_yields"] == 3
    agent_min = (600 * 4 + 100 * 2) * 10 / 1000 / 60
    assert m["agent_audio_min"] == pytest.approx(agent_min)
    assert m["false_yields_per_agent_min"] == pytest.approx(3 / agent_min)
    assert m["backchannel_resume_rate"] == 1.0 and m["backchannel_pause_rate"] == 0.5
    assert m["llm_tokens_after_cancel"] == {"mean": 2.0, "max": 4}
    assert m["n_scenarios"] == 6 and m["errors"] == 0
    json.dumps(m)


def test_errored_traces_are_counted_not_scored() -> None:
    ok = build("100 playing, 20 cleared", voiced_ms=900, sid="ok", max_tick_lag_ms=3.0)
    bad = build("100 playing, done", voiced_ms=500, sid="bad", error="boom", max_tick_lag_ms=7.5)
    m = compute_metrics([ok, bad])
    assert m["errors"] == 1 and m["n_scenarios"] == 2
    assert m["missed_interrupt_rate"] == 0.0 and m["time_to_yield_ms"]["n"] == 1
    assert m["max_tick_lag_ms"] == 7.5
    assert score_scenario(bad)["error"] == "boom"


def test_empty_config() -> None:
    m = compute_metrics([])
    assert m["n_scenarios"] == 0 and m["false_yields_per_agent_min"] is None
    assert m["missed_interrupt_rate"] is None and m["false_yield_rate"] == {}
    assert m["llm_tokens_after_cancel"] == {"mean": None, "max": None}


def test_scenario_trace_json_round_trip() -> None:
    tr = build("20 pending, 100 playing, 20 cleared", voiced_ms=500, sid="rt")
    tr.words = [WordTiming("hello", 0, 4000), WordTiming("there", 4000, 9000)]
    tr.context = ctx("Your appointment is on", "your appointment is on", "Tuesday")
    tr.vad_probability = [(100, 0.1), (612, 0.93)]
    tr.events = [{"sample": 1234, "kind": "pause", "reason": "vad"}]
    tr.agent_level_db = [-20.5, float("-inf")]
    back = ScenarioTrace.from_json(json.loads(json.dumps(tr.to_json())))
    assert back == tr
    assert score_scenario(back) == score_scenario(tr)
