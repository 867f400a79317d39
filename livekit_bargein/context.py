"""What the caller heard and what the agent had not yet said, kept in the chat context.

On a hard interrupt the assistant ``ChatMessage`` keeps the heard text as its content and the rest
of the reply under ``message.extra[EXTRA_KEY]``.
"""

from __future__ import annotations

EXTRA_KEY = "livekit_bargein"
"""Key of ``ChatMessage.extra`` holding ``{"unspoken_tail": str, "heard_text": str, ...}``."""
