"""Offline: the caller cuts a long answer short with "sorry, what was the price again?", and the
agent answers, then resumes from where it stopped.

    .venv/bin/python examples/resume_after_interruption.py

What it shows, through a real AgentSession (Silero, WebRTC APM, Piper voice, no server or keys):

1. the assistant message holds what the caller heard, marked interrupted, and the unsaid rest
   under ``message.extra["livekit_bargein"]``;
2. the next LLM call sees the plugin's note (``BargeIn(note_template=...)`` changes or disables
   it); the scripted LLM here stands in for a real one and builds its answer from that note.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from livekit.agents import llm

from livekit_bargein.eval.harness import HarnessResources, run_scenario
from livekit_bargein.eval.llm import ScriptedLLM
from livekit_bargein.eval.manifest import load_manifest

ANSWER = (
    "The premium plan is forty nine dollars a month, billed yearly. It includes unlimited "
    "calls, a dedicated number, voicemail transcription and priority support, and you can "
    "add extra seats at twelve dollars each whenever your team grows."
)
QUESTION = "Sorry, what was the price again?"
_UNSAID = re.compile(r'not yet said: "(.*)"', re.IGNORECASE | re.DOTALL)


def reply_for(chat_ctx: llm.ChatContext) -> str:
    """A stand-in for the LLM: the first call answers; later ones read the plugin's note."""
    notes = [
        m.text_content or ""
        for m in chat_ctx.items
        if getattr(m, "type", None) == "message" and m.role == "system"
    ]
    unsaid = next((m.group(1) for n in notes if (m := _UNSAID.search(n))), None)
    if not any(getattr(m, "role", None) == "assistant" for m in chat_ctx.items):
        return ANSWER
    if unsaid is None:
        return "Sorry, could you repeat that?"
    return f"Forty nine dollars a month. As I was saying, {unsaid}"


async def main() -> dict[str, object]:
    res = HarnessResources.load()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        syn = res.piper.synthesize(QUESTION, pitch_semitones=4.0)
        pad = np.zeros(1600, np.float32)
        sf.write(d / "question.wav", np.concatenate([pad, syn.audio * 0.7, pad]), 16000)
        line = {
            "id": "price-again", "label": "interrupt", "agent_text": ANSWER,
            "user_audio": "question.wav", "user_onset_s": 3.0,
            "speech_start_s": (1600 + syn.words[0].start_sample) / 16000,
            "user_text": QUESTION, "echo": {"gain_db": -15, "delay_ms": 80},
        }
        (d / "manifest.jsonl").write_text(json.dumps(line) + "\n")
        scenario = load_manifest(d / "manifest.jsonl")[0]
        scripted = ScriptedLLM(replies=reply_for)
        trace = await run_scenario(scenario, "bargein", res, llm=scripted)

    ctx = trace.context
    assert ctx is not None, trace.error
    result = {
        "heard": ctx.message_text,
        "interrupted": ctx.message_interrupted,
        "unsaid": ctx.unspoken_tail,
        "note": ctx.next_call_note,
        "next_reply": scripted.records[1].reply if len(scripted.records) > 1 else None,
    }
    print(f"agent said (and the caller heard): {result['heard']!r}")
    print(f"  interrupted: {result['interrupted']}")
    print(f"  kept for later:                  {result['unsaid']!r}")
    print(f"note the next LLM call saw:        {result['note']!r}")
    print(f"agent's next reply:                {result['next_reply']!r}")
    return result


if __name__ == "__main__":
    asyncio.run(main())
