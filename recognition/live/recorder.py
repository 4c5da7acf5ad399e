"""Live sessions that outlive a socket: a dropped socket parks its recorder (``ParkedSessions``)
for a grace period so a reconnect resumes the same session; if nobody comes back it is saved as
it is. The recorder itself (``SessionRecorder``: counts, tallies, the one-second timeline) is the
analyses app's (``recognition.analyses.live_sessions``), which owns what a saved session holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from recognition.analyses.live_sessions import (
    MAX_TIMELINE_POINTS,
    MAX_VOICE_POINTS,
    SessionRecorder,
)

__all__ = ["MAX_TIMELINE_POINTS", "MAX_VOICE_POINTS", "ParkedSessions", "SessionRecorder", "parked"]


# --- Sessions that outlive a socket ----------------------------------------------------------


class ParkedSessions:
    """Recorders of dropped sockets, keyed by (user id, client session id), for a grace period.

    A reconnect with the same id within ``resume_seconds`` takes the recorder back; otherwise
    ``on_expire`` (saving it) runs. Per process: a reconnect that lands on another process starts
    a new session and the parked one is saved when its grace period ends."""

    def __init__(self) -> None:
        self._items: dict[
            tuple[int, str], tuple[SessionRecorder, asyncio.TimerHandle]
        ] = {}

    def park(
        self,
        key: tuple[int, str],
        recorder: SessionRecorder,
        delay: float,
        on_expire: Callable[[SessionRecorder], Awaitable[None]],
    ) -> None:
        loop = asyncio.get_running_loop()
        self.take(key)

        def expire() -> None:
            item = self._items.pop(key, None)
            if item is not None:
                loop.create_task(on_expire(item[0]))

        self._items[key] = (recorder, loop.call_later(delay, expire))

    def take(self, key: tuple[int, str]) -> SessionRecorder | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        item[1].cancel()
        return item[0]

    def __len__(self) -> int:
        return len(self._items)


parked = ParkedSessions()
