"""Offline: replay one labeled scenario through a real AgentSession and print what the plugin did.

    .venv/bin/livekit-bargein scenarios build out/scenarios
    .venv/bin/python examples/replay_scenario.py out/scenarios/manifest.jsonl interrupt-003

Runs without a LiveKit server or any cloud key (Piper voice, scripted LLM, oracle STT).
"""

from __future__ import annotations

import asyncio
import sys

from livekit_bargein.eval.harness import HarnessResources, run_scenario
from livekit_bargein.eval.manifest import load_manifest
from livekit_bargein.eval.metrics import score_scenario


async def main(manifest: str, scenario_id: str, config: str = "bargein") -> None:
    scenarios = {s.id: s for s in load_manifest(manifest)}
    if scenario_id not in scenarios:
        raise SystemExit(f"no scenario '{scenario_id}' in {manifest}")
    trace = await run_scenario(scenarios[scenario_id], config, HarnessResources.load())
    score = score_scenario(trace)
    t0 = trace.first_audible_sample or 0
    print(f"{scenario_id} [{trace.label}] under {config}")
    for e in trace.events:
        if e["kind"].startswith("bargein_"):
            print(f"  {(e['sample'] - t0) / 16:8.0f} ms  {e['kind'][8:]:<10} {e.get('reason', '')}")
    print(f"  time to yield: {score['time_to_yield_ms']} ms, missed: {score['missed']}, "
          f"false yields: {score['false_yields']}, reply completed: {trace.reply_completed}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    asyncio.run(main(*sys.argv[1:4]))
