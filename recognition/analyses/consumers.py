"""Websocket ``/ws/analyses/``: pushes the signed-in person's analysis status changes.

Joins the channel group ``user-<id>``; ``services.notify`` sends ``analysis.update`` events
there. Read-only: client messages other than a small ping are ignored.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class AnalysisStatusConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = f"user-{user.pk}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        # Only a tiny keep-alive is understood; anything else (or anything large) is ignored.
        if text_data and len(text_data) < 64 and '"ping"' in text_data:
            await self.send_json({"type": "pong"})

    async def analysis_update(self, event: dict[str, Any]) -> None:
        await self.send_json(
            {"type": "analysis.update", "analysis": event.get("analysis")}
        )
