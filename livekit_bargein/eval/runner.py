"""Runs a manifest under several configurations concurrently (``--jobs``) and collects traces.

Scenarios run in real time, so concurrency is what makes a full run take minutes: ``jobs`` sessions
at once, spread over up to one worker process per core. Each process loads Silero and Piper once,
warms them up, and freezes the garbage collector's heap so full collections don't stall the clock.
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .manifest import Scenario, load_manifest
from .trace import ScenarioTrace

Task = tuple[int, str]  # (scenario index, config name)


def plan_tasks(scenarios: list[Scenario], configs: list[str]) -> list[Task]:
    # Scenario-major, configs interleaved: concurrent load is alike for every configuration.
    return [(i, c) for i in range(len(scenarios)) for c in configs]


def run_eval(
    manifest: Path,
    configs: list[str],
    *,
    jobs: int = 4,
    procs: int | None = None,
    only: list[str] | None = None,
    trace_dir: Path | None = None,
    decision_trace_dir: Path | None = None,
    on_done: Callable[[ScenarioTrace], None] | None = None,
    fixed_voice: bool = False,
    mic_rate_hz: int = 16_000,
    stt_interims: bool = True,
) -> dict[str, list[ScenarioTrace]]:
    """Run every scenario of ``manifest`` (or the ids in ``only``) under every config.

    ``decision_trace_dir``: configurations with the engine write ``DIR/CONFIG/ID.jsonl`` there.
    ``fixed_voice``: the agent's Piper voice without sampling noise, the same audio in every run.
    ``mic_rate_hz``: the rate of the microphone frames the sessions get (``HarnessResources``).
    ``stt_interims``: False: the oracle STT sends only finals, after the speech ends.
    """
    from .configs import get_config

    for c in configs:
        get_config(c)  # fail fast on an unknown name
    scenarios = load_manifest(manifest)
    if only:
        wanted = set(only)
        missing = wanted - {s.id for s in scenarios}
        if missing:
            raise KeyError(f"scenario ids not in {manifest}: {', '.join(sorted(missing))}")
        scenarios = [s for s in scenarios if s.id in wanted]
    tasks = plan_tasks(scenarios, configs)
    jobs = max(1, jobs)
    n_procs = max(1, min(jobs, procs or os.cpu_count() or 1, len(tasks)))
    per_proc = math.ceil(jobs / n_procs)

    results: dict[str, list[ScenarioTrace]] = {c: [] for c in configs}

    def collect(trace: ScenarioTrace) -> None:
        results[trace.config].append(trace)
        if trace_dir is not None:
            d = trace_dir / trace.config
            d.mkdir(parents=True, exist_ok=True)
            trace.save(d / f"{trace.scenario_id}.json")
        if on_done is not None:
            on_done(trace)

    if n_procs == 1:
        for t in asyncio.run(
            _run_batch(
                scenarios, tasks, per_proc, configs,
                decision_trace_dir=decision_trace_dir, fixed_voice=fixed_voice,
                mic_rate_hz=mic_rate_hz, stt_interims=stt_interims,
            )
        ):
            collect(t)
    else:
        ctx = mp.get_context("spawn")
        q: Any = ctx.Queue()
        todo: Any = ctx.Queue()
        for t in tasks:  # one shared queue: a worker that finishes early takes more
            todo.put(t)
        procs = [
            ctx.Process(
                target=_worker,
                args=(str(manifest), [s.id for s in scenarios], todo, per_proc, configs, q),
                kwargs={
                    "decision_trace_dir": decision_trace_dir,
                    "fixed_voice": fixed_voice,
                    "mic_rate_hz": mic_rate_hz,
                    "stt_interims": stt_interims,
                },
            )
            for _ in range(n_procs)
        ]
        for p in procs:
            p.start()
        remaining = len(tasks)
        while remaining:
            try:
                item = q.get(timeout=5)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    raise RuntimeError("evaluator worker processes died") from None
                continue
            if isinstance(item, str):  # a worker's fatal error
                raise RuntimeError(f"evaluator worker failed: {item}")
            collect(item)
            remaining -= 1
        for p in procs:
            p.join()
    order = {s.id: i for i, s in enumerate(scenarios)}
    for traces in results.values():
        traces.sort(key=lambda t: order[t.scenario_id])
    return results


def _worker(
    manifest: str,
    ids: list[str],
    todo: Any,
    concurrency: int,
    configs: list[str],
    q: Any,
    *,
    decision_trace_dir: Path | None = None,
    fixed_voice: bool = False,
    mic_rate_hz: int = 16_000,
    stt_interims: bool = True,
) -> None:
    import logging

    # LiveKit warns on every session torn down mid-turn; the evaluator does that by design.
    logging.getLogger("livekit.agents").setLevel(logging.ERROR)
    try:
        wanted = set(ids)
        scenarios = [s for s in load_manifest(manifest) if s.id in wanted]
        asyncio.run(
            _run_batch(
                scenarios, todo, concurrency, configs, q,
                decision_trace_dir=decision_trace_dir, fixed_voice=fixed_voice,
                mic_rate_hz=mic_rate_hz, stt_interims=stt_interims,
            )
        )
    except BaseException as e:  # report, so the parent does not wait forever
        q.put(f"{type(e).__name__}: {e}")
        raise


async def _run_batch(
    scenarios: list[Scenario],
    todo: list[Task] | Any,
    concurrency: int,
    configs: list[str],
    q: Any = None,
    *,
    decision_trace_dir: Path | None = None,
    fixed_voice: bool = False,
    mic_rate_hz: int = 16_000,
    stt_interims: bool = True,
) -> list[ScenarioTrace]:
    """Run tasks from ``todo`` (a list or a multiprocessing queue), ``concurrency`` at once."""
    from concurrent.futures import ThreadPoolExecutor

    from .harness import HarnessResources, run_scenario

    # LiveKit's Silero runs each 32 ms inference in the default executor: with many sessions a
    # small pool queues them (the default is cores + 4 threads).
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=max(8, 4 * concurrency), thread_name_prefix="eval")
    )
    res = HarnessResources.load(
        fixed_voice=fixed_voice, mic_rate_hz=mic_rate_hz, stt_interims=stt_interims
    )
    gc_pauses_ms: list[float] = []
    gc_t0 = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_t0[0] = time.perf_counter()
        elif info.get("generation", 0) >= 1:
            gc_pauses_ms.append((time.perf_counter() - gc_t0[0]) * 1000)

    gc.callbacks.append(on_gc)
    await _warm_up(res, configs)
    gc.collect()
    gc.freeze()
    out: list[ScenarioTrace] = []
    local = list(todo) if isinstance(todo, list) else None

    def next_task() -> Task | None:
        if local is not None:
            return local.pop(0) if local else None
        try:
            return todo.get_nowait()  # type: ignore[no-any-return]
        except queue.Empty:
            return None

    async def lane() -> None:
        while (task := next_task()) is not None:
            idx, cfg = task
            n_gc = len(gc_pauses_ms)
            trace = await run_scenario(
                scenarios[idx], cfg, res, decision_trace_dir=decision_trace_dir
            )
            trace.events.append({"sample": 0, "kind": "gc_pauses_ms",
                                 "values": [round(x, 1) for x in gc_pauses_ms[n_gc:]]})
            # objects of finished sessions move to the frozen generation: no stalls later
            gc.freeze()
            out.append(trace)
            if q is not None:
                # pickled by the queue's feeder thread; asdict() here would stall the loop
                q.put(trace)

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return out


async def _warm_up(res: Any, configs: list[str]) -> None:
    """Pay every lazy initialisation (ONNX graphs, tokenizers, APM, ...) before a clock runs.

    A short echo-only session per configuration, concurrently: the first sessions of a process
    otherwise stall the event loop ~100 ms while libraries initialise, skewing their timings.
    """
    from .harness import run_scenario
    from .manifest import EchoSpec

    warm = Scenario(
        id="warm-up",
        label="echo_only",
        agent_text="Hello, this is a short warm up. It is not scored.",
        echo=EchoSpec(gain_db=-10.0, delay_ms=60.0),
    )
    await asyncio.gather(*(run_scenario(warm, c, res) for c in configs))
