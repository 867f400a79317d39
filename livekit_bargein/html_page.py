"""What the HTML pages (evaluator report, decision-trace page) share: base style and escaping."""

from __future__ import annotations

import html
from typing import Any

BASE_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def esc(x: Any) -> str:
    """``x`` as text safe inside HTML."""
    return html.escape(str(x))
