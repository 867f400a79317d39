"""livekit-bargein: barge-in for LiveKit Agents.

Echo-aware onset detection on the echo-cancelled microphone, a soft yield (pause) on a credible
onset, and a hard interrupt once words or sustained speech confirm it.

Example:
    bargein = BargeIn(profile="speakerphone")
    session = AgentSession(vad=bargein.vad, turn_handling=bargein.turn_handling(), ...)
    await session.start(agent, room=ctx.room)
    bargein.attach(session)
"""

from __future__ import annotations

import threading

from livekit.agents import Plugin

from .aec import EchoCanceller
from .context import EXTRA_KEY
from .decision import Action, BargeInController, Decision, Observation
from .engine import BargeIn
from .log import logger
from .options import PROFILES, BargeInOptions, profile
from .taps import EchoCancelledInput, PlaybackTap
from .vad import BargeInVAD
from .version import __version__

__all__ = [
    "EXTRA_KEY",
    "PROFILES",
    "Action",
    "BargeIn",
    "BargeInController",
    "BargeInOptions",
    "BargeInPlugin",
    "BargeInVAD",
    "Decision",
    "EchoCancelledInput",
    "EchoCanceller",
    "Observation",
    "PlaybackTap",
    "__version__",
    "profile",
]


class BargeInPlugin(Plugin):
    """Registers livekit-bargein with the agents framework (listed by the worker)."""

    def __init__(self) -> None:
        super().__init__("livekit-bargein", __version__, __package__ or "livekit_bargein", logger)


def _register() -> None:
    # Plugin.register_plugin raises off the main thread (livekit/agents/plugin.py). Importing
    # the package from a worker thread must still work, so registration is skipped there.
    if threading.current_thread() is not threading.main_thread():
        logger.debug("plugin not registered: imported off the main thread")
        return
    if any(p.title == "livekit-bargein" for p in Plugin.registered_plugins):
        return  # re-import (importlib.reload): register once
    Plugin.register_plugin(BargeInPlugin())


_register()
