"""Stand-ins for LiveKit objects that need a server."""

from __future__ import annotations

import json
from typing import Any


class FakeLocalParticipant:
    """Records calls with the signatures of ``rtc.LocalParticipant``."""

    def __init__(self, *, fail_attributes: int = 0) -> None:
        self.attribute_calls: list[dict[str, str]] = []
        self.data_calls: list[tuple[bytes, bool, str]] = []
        self.attributes: dict[str, str] = {}
        self._fail_attributes = fail_attributes

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        self.attribute_calls.append(dict(attributes))
        if self._fail_attributes > 0:
            self._fail_attributes -= 1
            raise RuntimeError("no permission")
        self.attributes.update(attributes)  # the server merges

    async def publish_data(
        self,
        payload: bytes | str,
        *,
        reliable: bool = True,
        destination_identities: list[str] | None = None,
        topic: str = "",
    ) -> None:
        assert isinstance(payload, bytes)
        self.data_calls.append((payload, reliable, topic))

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(p) for p, _, _ in self.data_calls]
