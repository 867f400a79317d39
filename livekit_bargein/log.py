import logging

logger = logging.getLogger("livekit_bargein")
