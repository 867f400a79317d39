"""``livekit-bargein``: build scenarios, run the evaluator, render timelines."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from .options import SUPPORTED_RATES_HZ, BargeInOptions

DEFAULT_CONFIGS = "livekit-default,livekit-fast,livekit-aec"
_SPOKEN_LABELS = ("interrupt", "backchannel", "background_speech")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="livekit-bargein", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

    sc = sub.add_parser("scenarios", help="bundled scenario set")
    sc_sub = sc.add_subparsers(dest="sc_cmd", required=True)
    build = sc_sub.add_parser("build", help="generate the bundled set (deterministic)")
    build.add_argument("out", type=Path)
    build.add_argument("--seed", type=int, default=0)

    ev = sub.add_parser("eval", help="run scenarios through a real AgentSession per configuration")
    ev.add_argument("--manifest", type=Path, required=True)
    ev.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated names")
    ev.add_argument("--out", type=Path, required=True)
    ev.add_argument(
        "--jobs",
        type=int,
        default=4,
        help="concurrent sessions (default 4: two per core keeps the worst tick lag under ~35 ms)",
    )
    ev.add_argument(
        "--procs", type=int, default=None, help="worker processes (default: one per core)"
    )
    ev.add_argument("--only", default=None, help="comma-separated scenario ids")
    ev.add_argument(
        "--fixed-voice",
        action="store_true",
        help="agent voice without Piper's sampling noise: the same audio in every run (A/B runs)",
    )
    ev.add_argument(
        "--mic-rate",
        type=int,
        default=16_000,
        choices=SUPPORTED_RATES_HZ,
        help="rate of the microphone frames the session gets (a LiveKit room: 24000); the "
        "acoustics are simulated at 16 kHz",
    )
    ev.add_argument(
        "--stt",
        choices=("streaming", "final-only"),
        default="streaming",
        help="the oracle STT: interim words from ~350 ms into the speech (streaming), or only a "
        "final transcript 600 ms after the speech ends (a non-streaming STT, e.g. openai.STT()'s "
        "default)",
    )
    ev.add_argument(
        "--timeline", default=None, help="comma-separated scenario ids to plot as timelines"
    )

    tl = sub.add_parser("timeline", help="plot a scenario timeline from an evaluator run")
    tl.add_argument("run_dir", type=Path)
    tl.add_argument("--scenario", required=True)
    tl.add_argument("--config", required=True)
    tl.add_argument("--out", type=Path, default=None)

    dt = sub.add_parser("trace", help="render a decision trace (JSONL) as a timeline: PNG + HTML")
    dt.add_argument("trace", type=Path, help="a DecisionTrace file")
    dt.add_argument("--out", type=Path, required=True, help="directory for <stem>.png/.html")

    rp = sub.add_parser("report", help="re-render tables and plots from one or more report.json")
    rp.add_argument("reports", type=Path, nargs="+")
    rp.add_argument("--out", type=Path, required=True)

    sub.add_parser("configs", help="list the known configurations")

    bn = sub.add_parser("bench", help="CPU per stream: pipeline vs Silero alone")
    bn.add_argument("--seconds", type=float, default=30.0, help="audio per measurement")
    bn.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write JSON")
    bn.add_argument(
        "--rate", type=int, default=16_000, choices=SUPPORTED_RATES_HZ,
        help="microphone and reference rate (a LiveKit room: 48000)",
    )
    bn.add_argument(
        "--native-rate", action="store_true",
        help="process at the microphone's rate (BargeInOptions(aec_rate_hz=None))",
    )

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # LiveKit warns on every session torn down mid-turn; the evaluator does that by design.
    logging.getLogger("livekit.agents").setLevel(logging.ERROR)

    if args.cmd == "scenarios":
        from .eval.scenarios import build_bundled_set

        t0 = time.monotonic()
        manifest = build_bundled_set(args.out, seed=args.seed, progress=True)
        print(f"wrote {manifest} in {time.monotonic() - t0:.1f} s")
        return 0
    if args.cmd == "configs":
        from .eval.configs import config_names, get_config

        for name in config_names():
            print(f"{name:20s} {get_config(name).description}")
        return 0
    if args.cmd == "eval":
        return _eval(args)
    if args.cmd == "bench":
        from .bench import bench_cli

        return bench_cli(
            seconds=args.seconds,
            json_out=args.json,
            sample_rate_hz=args.rate,
            aec_rate_hz=None if args.native_rate else BargeInOptions().aec_rate_hz,
        )
    if args.cmd == "report":
        return _report(args)
    if args.cmd == "trace":
        from .trace_view import render_trace

        try:
            rendered = render_trace(args.trace, args.out)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {rendered.png} and {rendered.html}")
        return 0
    if args.cmd == "timeline":
        from .eval.report import plot_timeline
        from .eval.trace import ScenarioTrace

        trace = ScenarioTrace.load(args.run_dir / "traces" / args.config / f"{args.scenario}.json")
        out = args.out or args.run_dir / "timelines" / f"{args.config}__{args.scenario}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        plot_timeline(trace, out)
        print(f"wrote {out}")
        return 0
    return 2


def _report(args: argparse.Namespace) -> int:
    """Merge reports (e.g. a sweep run beside the main run) into one table and set of plots."""
    from .eval.html_report import write_html_report
    from .eval.report import (
        markdown_table,
        plot_false_yield_by_label,
        plot_tradeoff,
        plot_ttfy_cdf,
        print_table,
    )

    merged: dict = {"configs": {}}
    for path in args.reports:
        merged["configs"].update(json.loads(path.read_text())["configs"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(merged, indent=1))
    plot_ttfy_cdf(merged, args.out / "ttfy_cdf.png")
    plot_false_yield_by_label(merged, args.out / "false_yield_by_label.png")
    plot_tradeoff(merged, args.out / "tradeoff.png")
    (args.out / "table.md").write_text(markdown_table(merged))
    print_table(merged)
    print(f"html: {write_html_report(args.out)}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from .eval.html_report import write_html_report
    from .eval.manifest import ManifestError, load_manifest
    from .eval.report import (
        markdown_table,
        plot_false_yield_by_label,
        plot_timeline,
        plot_tradeoff,
        plot_ttfy_cdf,
        print_table,
        write_report,
    )
    from .eval.runner import run_eval

    console = Console()
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    try:
        scenarios = load_manifest(args.manifest)
    except (ManifestError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}")
        return 2
    n = len(scenarios)
    untranscribed = [s.id for s in scenarios if s.label in _SPOKEN_LABELS and not s.user_text]
    if untranscribed:
        # the oracle STT can only say what the manifest says: these callers are never heard in words
        console.print(
            f"[yellow]note:[/yellow] {len(untranscribed)} spoken scenario(s) without user_text "
            f"get no transcript (as from an STT that hears nothing): "
            f"{', '.join(untranscribed[:5])}{' ...' if len(untranscribed) > 5 else ''}"
        )
    total = (len(only) if only else n) * len(configs)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("scenarios", total=total)
        try:
            traces = run_eval(
                args.manifest,
                configs,
                jobs=args.jobs,
                procs=args.procs,
                only=only,
                trace_dir=args.out / "traces",
                decision_trace_dir=args.out / "decision_traces",
                on_done=lambda _t: progress.advance(task),
                fixed_voice=args.fixed_voice,
                mic_rate_hz=args.mic_rate,
                stt_interims=args.stt == "streaming",
            )
        except KeyError as e:
            console.print(f"[red]error:[/red] {e.args[0]}")
            return 2
    elapsed = time.monotonic() - t0
    report = write_report(
        args.out,
        traces,
        run_info={
            "manifest": str(args.manifest),
            "jobs": args.jobs,
            "elapsed_s": round(elapsed, 1),
            "configs": configs,
            "fixed_voice": args.fixed_voice,
            "mic_rate_hz": args.mic_rate,
            "stt": args.stt,
        },
    )
    plot_ttfy_cdf(report, args.out / "ttfy_cdf.png")
    plot_false_yield_by_label(report, args.out / "false_yield_by_label.png")
    plot_tradeoff(report, args.out / "tradeoff.png")
    (args.out / "table.md").write_text(markdown_table(report))
    if args.timeline:
        for sid in args.timeline.split(","):
            for cfg, ts in traces.items():
                for t in ts:
                    if t.scenario_id == sid.strip():
                        plot_timeline(t, args.out / "timelines" / f"{cfg}__{t.scenario_id}.png")
    html_page = write_html_report(args.out)  # after the timelines: it shows them
    print_table(report, console=console)
    errors = {c: sum(1 for t in ts if t.error) for c, ts in traces.items()}
    if any(errors.values()):
        console.print(f"[yellow]scenarios with errors:[/yellow] {json.dumps(errors)}")
    console.print(f"report: {args.out / 'report.json'}, {html_page}  ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
