"""Fast, deterministic replay of a scenario manifest through the engine, without AgentSession.

A development tool, not the judge: ``livekit-bargein eval`` (a real AgentSession, real time) is.
This one runs the same engine parts synchronously and faster than real time -- the WebRTC APM
canceller with delay alignment and the near-end cue, Silero, ``BargeIn.observe_window`` and the
controller -- on the same acoustic path (``eval.acoustics.AcousticPath``), with the agent's Piper
voice without sampling noise and transcripts timed like the evaluator's oracle STT. The simulated
speaker obeys the decisions (pause, resume from the same sample, stop), so yields are counted as
the evaluator counts them (>= 100 ms). No LiveKit scheduling jitter: the same code gives the
same numbers, so small A/Bs are meaningful here before they are confirmed by the evaluator.

    .venv/bin/python tuning/fast_replay.py --manifest out/scenarios/manifest.jsonl \
        --set near_end_share_min=0.3 --jobs 2 --out out/fast/a.json

``--warm-s 4`` replays a *warm* call instead: the agent first plays the reply's first 4 s (a
previous reply, heard over the same echo path, with the noise bed already running), then nothing
for ``--warm-gap-s`` (the caller's turn), then the scenario's reply as usual. The scenario's
figures count from that reply only. Each scenario in the manifest is a single reply from a cold
start; this is how the engine does on every later reply of a call.

Differences from the evaluator: the whole reply is synthesized in one piece (no sentence
streaming gaps), the reference reaches the canceller with no transport offset, and LiveKit's own
turn handling does not run.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_RATE_HZ = 16_000
_TICK = 160
_LEAD_S = 1.0  # mic silence before the agent's first sample (the session starting)
_TAIL_S = 1.0
_YIELD_MIN_TICKS = 10  # 100 ms
_ANSWER_WINDOW_MS = 1500.0
_INTERIM_DELAY_MS = 350.0  # as eval.stt.OracleSTT
_INTERIM_INTERVAL_MS = 250.0
_FINAL_DELAY_MS = 250.0


@dataclass
class _Transcript:
    transcript: str
    is_final: bool


@dataclass
class Result:
    id: str
    label: str
    agent_ms: float
    yields: list[dict[str, Any]] = field(default_factory=list)
    ttfy_ms: float | None = None
    missed: bool = False
    false_yields: int = 0
    decisions: list[tuple[float, str, str]] = field(default_factory=list)
    windows: list[dict[str, Any]] = field(default_factory=list)
    voiced_ms: float | None = None
    event_ms: tuple[float, float] | None = None
    """The user event's first and last active sample (after the agent's first sample)."""


_worker_state: dict[str, Any] = {}


def _init_worker(
    overrides: dict[str, Any],
    profile_name: str,
    trace: bool = False,
    warm_s: float = 0.0,
    warm_gap_s: float = 1.5,
    final_only: bool = False,
) -> None:
    from livekit.plugins.silero import onnx_model

    from livekit_bargein.eval.piper_voice import PiperSpeaker
    from livekit_bargein.vad import _shared_onnx_session

    _worker_state["overrides"] = overrides
    _worker_state["trace"] = trace
    _worker_state["warm"] = (warm_s, warm_gap_s)
    _worker_state["final_only"] = final_only
    _worker_state["profile"] = profile_name
    _worker_state["piper"] = PiperSpeaker.load()
    _worker_state["model_factory"] = lambda: onnx_model.OnnxModel(
        onnx_session=_shared_onnx_session(), sample_rate=_RATE_HZ
    )
    _worker_state["voice_cache"] = {}


def _agent_audio(text: str) -> np.ndarray:
    cache = _worker_state["voice_cache"]
    if text not in cache:
        syn = _worker_state["piper"].synthesize(text, out_rate_hz=_RATE_HZ, deterministic=True)
        pcm = np.clip(syn.audio, -1.0, 1.0)
        cache[text] = (np.round(pcm * 32767.0) / 32767.0).astype(np.float32)
    return cache[text]


def _transcript_schedule(
    text: str | None, voiced: int | None, end: int | None, *, final_only: bool = False
) -> list[tuple[int, _Transcript]]:
    if not text or voiced is None or end is None:
        return []
    words = text.split()
    ms = _RATE_HZ // 1000
    if final_only:
        from livekit_bargein.eval.stt import FINAL_ONLY_DELAY_MS  # the evaluator's --stt final-only

        return [(end + int(FINAL_ONLY_DELAY_MS * ms), _Transcript(text, True))]
    final_at = end + int(_FINAL_DELAY_MS * ms)
    span = max(1, end - voiced)
    out: list[tuple[int, _Transcript]] = []
    at = voiced + int(_INTERIM_DELAY_MS * ms)
    while at < final_at:
        k = max(1, math.floor(min(1.0, (at - voiced) / span) * len(words)))
        out.append((at, _Transcript(" ".join(words[:k]), False)))
        at += int(_INTERIM_INTERVAL_MS * ms)
    out.append((final_at, _Transcript(text, True)))
    return out


def replay(scenario: Any) -> Result:
    from livekit_bargein.aec import EchoCanceller
    from livekit_bargein.decision import Action
    from livekit_bargein.engine import BargeIn, _level_db
    from livekit_bargein.eval.acoustics import AcousticPath, active_span
    from livekit_bargein.options import profile
    from livekit_bargein.vad import WINDOW_SAMPLES

    opts = profile(_worker_state["profile"], **_worker_state["overrides"])
    engine = BargeIn(options=opts)
    # the simulated oracle STT transcribes the caller; interim words unless it is final-only
    engine.controller.transcripts_expected = not _worker_state["final_only"]
    aec = EchoCanceller(
        sample_rate_hz=_RATE_HZ,
        noise_suppression=opts.aec_noise_suppression,
        wait_for_echo=opts.aec_wait_for_echo,
        near_end_gain_bound_db=(
            opts.near_end_gain_bound_margin_db if opts.near_end_gain_bound else None
        ),
        separate_near_end=opts.separates_near_end,
        near_end_estimate_history_ms=opts.near_end_estimate_history_ms,
        mic_gain_db=opts.mic_gain_db,
    )
    model = _worker_state["model_factory"]()
    agent = _agent_audio(scenario.agent_text)
    path = AcousticPath(scenario, sample_rate_hz=_RATE_HZ)
    pre = int(_LEAD_S * _RATE_HZ)
    warm_s, warm_gap_s = _worker_state["warm"]
    warm = agent[: int(warm_s * _RATE_HZ)]
    warm_end = pre + len(warm)
    # the reply starts on a whole tick (the loop below plays whole ticks)
    lead = -(-(warm_end + int(warm_gap_s * _RATE_HZ)) // _TICK) * _TICK if len(warm) else pre
    path.place_user(lead)
    if len(warm):
        path.bed_start = pre  # the bed was there before this reply
    voiced, end = path.user_voiced_sample, path.user_end_sample
    schedule = _transcript_schedule(
        scenario.user_text, voiced, end, final_only=_worker_state["final_only"]
    )

    state = {"mode": "play"}  # play | pause | stop
    decisions: list[tuple[float, str, str]] = []

    def on_decision(d: Any) -> None:
        decisions.append((d.t_ms, d.action.value, d.reason))
        if d.action is Action.SOFT_YIELD and state["mode"] == "play":
            state["mode"] = "pause"
        elif d.action is Action.RESUME and state["mode"] == "pause":
            state["mode"] = "play"
        elif d.action is Action.INTERRUPT:
            state["mode"] = "stop"

    engine.on("decision", on_decision)
    windows: list[dict[str, Any]] = []
    if _worker_state.get("trace"):

        def on_window(w: Any) -> None:
            o = w.observation
            windows.append(
                {
                    "t": o.t_ms - lead / 16.0,
                    "p": round(o.speech_prob, 2),
                    "praw": round(raw_probs[-1], 2) if raw_probs else None,
                    "pne": None if o.near_end_prob is None else round(o.near_end_prob, 2),
                    "thr": round(w.decision.threshold, 2),
                    "lvl": round(o.level_db),
                    "raw": None if o.raw_level_db is None else round(o.raw_level_db),
                    "res": None if o.residual_echo_db is None else round(o.residual_echo_db),
                    "floor": None if w.noise_floor_db is None else round(w.noise_floor_db),
                    "bg": _round(engine.controller.levels.background_db),
                    "ne": None if o.near_end_share is None else round(o.near_end_share, 2),
                    "neo": int(o.near_end_over_echo),
                    "uns": int(o.aec_unsettled),
                    "el": None if o.echo_likeness is None else round(o.echo_likeness, 2),
                    "dly": engine.echo_delay_ms,
                    "st": w.decision.state.value[:5],
                }
            )

        engine.on("window", on_window)
    n_ticks = (
        lead // _TICK
        + len(agent) // _TICK
        + int(((scenario.user_onset_s or 0.0) + len(path.user) / _RATE_HZ + _TAIL_S) * 100)
    )
    playhead = 0
    reply_active = False
    silent_run: list[int] = []  # ticks of the current pause/stop with audio left
    yields: list[tuple[int, int | None]] = []  # (first silent tick sample, end sample or None)
    buf = np.zeros(0, np.float32)
    raw_buf = np.zeros(0, np.float32)
    raw_model = _worker_state["model_factory"]() if _worker_state.get("trace") else None
    raw_probs: list[float] = []
    analysed = 0
    sched_i = 0
    for tick in range(n_ticks):
        s0 = tick * _TICK
        played = np.zeros(_TICK, np.float32)
        left = playhead < len(agent)
        if pre <= s0 < warm_end:  # the previous reply: played through, its yields not counted
            if s0 == pre:
                engine.controller.set_reply_active(True, t_ms=analysed * 1000 / _RATE_HZ)
            chunk = warm[s0 - pre : s0 - pre + _TICK]
            played[: len(chunk)] = chunk
            if s0 + _TICK >= warm_end:
                engine.controller.set_reply_active(False, t_ms=analysed * 1000 / _RATE_HZ)
                state["mode"] = "play"
        elif s0 >= lead and left:
            if not reply_active:
                reply_active = True
                engine.controller.set_reply_active(True, t_ms=analysed * 1000 / _RATE_HZ)
            if state["mode"] == "play":
                chunk = agent[playhead : playhead + _TICK]
                played[: len(chunk)] = chunk
                playhead += len(chunk)
                if silent_run:
                    if len(silent_run) >= _YIELD_MIN_TICKS:
                        yields.append((silent_run[0], s0))
                    silent_run = []
            else:
                silent_run.append(s0)
        elif reply_active and not left:
            reply_active = False
            engine.controller.set_reply_active(False, t_ms=analysed * 1000 / _RATE_HZ)
        mic = path.mic(s0, played)
        ref = played if s0 >= pre else None
        af = aec.process(mic, ref)
        engine.feed_aec_frame(af, _level_db(played))
        buf = np.concatenate([buf, af.clean])
        if raw_model is not None:
            raw_buf = np.concatenate([raw_buf, mic])
            while len(raw_buf) >= WINDOW_SAMPLES:
                raw_probs.append(float(raw_model(raw_buf[:WINDOW_SAMPLES])))
                raw_buf = raw_buf[WINDOW_SAMPLES:]
        while len(buf) >= WINDOW_SAMPLES:
            window, buf = buf[:WINDOW_SAMPLES], buf[WINDOW_SAMPLES:]
            analysed += WINDOW_SAMPLES
            prob = float(model(window)) if engine.needs_speech_prob(window) else 0.0
            engine.observe_window(
                window,
                speech_prob=prob,
                t_ms=analysed * 1000 / _RATE_HZ,
                window_ms=WINDOW_SAMPLES * 1000 / _RATE_HZ,
            )
        while sched_i < len(schedule) and schedule[sched_i][0] <= s0 + _TICK:
            engine._on_transcribed(schedule[sched_i][1])
            sched_i += 1
    if silent_run and (len(silent_run) >= _YIELD_MIN_TICKS or state["mode"] == "stop"):
        yields.append((silent_run[0], None))

    res = Result(
        id=scenario.id,
        label=scenario.label,
        agent_ms=playhead * 1000 / _RATE_HZ,
        decisions=decisions,
        windows=windows,
        voiced_ms=None if voiced is None else (voiced - lead) / 16.0,
        event_ms=None
        if path.user_start is None or end is None
        else (
            (path.user_start + active_span(path.user, sample_rate_hz=_RATE_HZ)[0] - lead) / 16.0,
            (end - lead) / 16.0,
        ),
    )
    answer = None
    if scenario.label == "interrupt" and voiced is not None:
        for i, (a, b) in enumerate(yields):
            in_progress = a <= voiced and (b is None or b > voiced)
            if in_progress or voiced <= a <= voiced + _ANSWER_WINDOW_MS * 16:
                answer = i
                break
        if answer is not None:
            a = yields[answer][0]
            res.ttfy_ms = max(0.0, (a - voiced) / 16.0) if a > voiced else None
        res.missed = answer is None
    for i, (a, b) in enumerate(yields):
        res.yields.append(
            {"start_ms": (a - lead) / 16.0, "end_ms": None if b is None else (b - lead) / 16.0}
        )
        if i != answer:
            res.false_yields += 1
    return res


def summarize(results: list[Result]) -> dict[str, Any]:
    inter = [r for r in results if r.label == "interrupt"]
    ttfy = np.array([r.ttfy_ms for r in inter if r.ttfy_ms is not None])
    agent_min = sum(r.agent_ms for r in results) / 60000.0
    labels = sorted({r.label for r in results})
    phantom = 0  # yields outside the user event (from 100 ms before it to 1 s after it)
    for r in results:
        ev = r.event_ms
        for y in r.yields:
            if ev is None or not ev[0] - 100 <= y["start_ms"] <= ev[1] + 1000:
                phantom += 1
    by_label = {
        lab: 100.0 * np.mean([r.false_yields > 0 for r in results if r.label == lab])
        for lab in labels
    }
    return {
        "ttfy_p50": float(np.percentile(ttfy, 50)) if len(ttfy) else None,
        "ttfy_p95": float(np.percentile(ttfy, 95)) if len(ttfy) else None,
        "ttfy_max": float(ttfy.max()) if len(ttfy) else None,
        "unmeasured": int(sum(r.ttfy_ms is None and not r.missed for r in inter)),
        "missed_pct": 100.0 * np.mean([r.missed for r in inter]) if inter else None,
        "false_yields": int(sum(r.false_yields for r in results)),
        "false_per_min": sum(r.false_yields for r in results) / agent_min if agent_min else None,
        "by_label": by_label,
        "phantom_yields": phantom,
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x)


def _print_trace(r: Result) -> None:
    print(f"== {r.id} ({r.label}) voiced at {r.voiced_ms} ms, decisions {r.decisions}")
    marks = [r.voiced_ms] if r.voiced_ms is not None else []
    marks += [d[0] - _LEAD_S * 1000 for d in r.decisions]
    if not marks:
        return
    keys = list(r.windows[0]) if r.windows else []
    print(" ".join(f"{k:>6s}" for k in keys))
    for w in r.windows:
        if any(m - 200 <= w["t"] <= m + 400 for m in marks):
            print(" ".join(f"{str(w[k]):>6.6s}" for k in keys))


def _parse_value(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    if v.lower() == "none":
        return None
    return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--profile", default="speakerphone")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--only", default=None, help="comma-separated scenario ids")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="per-scenario results (JSON)")
    ap.add_argument("-v", "--verbose", action="store_true", help="per-scenario lines")
    ap.add_argument("--trace", action="store_true", help="print the windows around each event")
    ap.add_argument(
        "--warm-s", type=float, default=0.0, help="seconds of a previous reply before this one"
    )
    ap.add_argument(
        "--warm-gap-s", type=float, default=1.5, help="silence between the two replies (s)"
    )
    ap.add_argument(
        "--stt",
        choices=("streaming", "final-only"),
        default="streaming",
        help="as the evaluator's: interim words, or only the final 600 ms after the speech",
    )
    args = ap.parse_args(argv)
    if args.warm_s < 0 or args.warm_gap_s < 0:
        ap.error(f"--warm-s and --warm-gap-s must be >= 0, got {args.warm_s}, {args.warm_gap_s}")

    from livekit_bargein.eval.manifest import load_manifest

    overrides = {k: _parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    scenarios = load_manifest(args.manifest)
    if args.only:
        keep = set(args.only.split(","))
        scenarios = [s for s in scenarios if s.id in keep]
    t0 = time.monotonic()
    ctx = mp.get_context("spawn")
    with ctx.Pool(
        args.jobs,
        initializer=_init_worker,
        initargs=(
            overrides, args.profile, args.trace, args.warm_s, args.warm_gap_s,
            args.stt == "final-only",
        ),
    ) as pool:
        results = pool.map(replay, scenarios, chunksize=1)
    summary = summarize(results)
    if args.trace:
        for r in results:
            _print_trace(r)
    if args.verbose:
        for r in results:
            if r.label == "interrupt" or r.false_yields:
                print(
                    f"{r.id:24s} ttfy={r.ttfy_ms!s:>8.8s} missed={r.missed!s:5s} "
                    f"false={r.false_yields} {[d[1:] for d in r.decisions[:3]]}"
                )
    by_label = " ".join(f"{k}={v:.0f}" for k, v in summary["by_label"].items())

    def num(key: str) -> str:
        v = summary[key]
        return "-" if v is None else f"{v:.0f}"

    print(
        f"{','.join(args.set) or 'defaults'}: p50={num('ttfy_p50')} "
        f"p95={num('ttfy_p95')} max={num('ttfy_max')} "
        f"unmeasured={summary['unmeasured']} missed={num('missed_pct')}% "
        f"false/min={summary['false_per_min']:.2f} ({summary['false_yields']}, "
        f"{summary['phantom_yields']} outside the event)  {by_label}  "
        f"[{time.monotonic() - t0:.0f} s]"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"summary": summary, "results": [r.__dict__ for r in results]}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
