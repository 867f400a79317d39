"""examples/resume_after_interruption.py runs offline and resumes from the unsaid tail."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "examples" / "resume_after_interruption.py"


async def test_agent_answers_then_resumes_from_where_it_stopped() -> None:
    spec = importlib.util.spec_from_file_location("resume_example", _PATH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    result = await mod.main()
    assert result["interrupted"] is True
    heard, unsaid = result["heard"], result["unsaid"]
    assert heard and unsaid and f"{heard} {unsaid}" == mod.ANSWER
    assert unsaid in result["note"]
    # the next reply answers the question, then continues with exactly what was not said
    assert result["next_reply"].startswith("Forty nine dollars")
    assert result["next_reply"].endswith(unsaid)
