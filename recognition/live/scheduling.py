"""Flow control of a live socket: a per-connection message rate limit, and ``LatestWins``:
one item in progress and at most one waiting; a newer item replaces the waiting one, so latency
never grows with load and nothing queues.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("recognition.live")  # the name the logs have always shown

class RateLimiter:
    """Token bucket: ``rate`` messages per second with a burst of one second's worth."""

    def __init__(
        self, rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.tokens = rate
        self.clock = clock
        self.updated = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class LatestWins:
    """Runs ``process(item)`` for one item at a time; while busy, only the newest item waits.

    ``submit`` returns the item it displaced (never processed), so the caller can tell the client
    that frame was dropped. Must be created inside a running event loop."""

    def __init__(self, process: Callable[[Any], Awaitable[None]]) -> None:
        self._process = process
        self._pending: Any = None
        self._wake = asyncio.Event()
        self.busy = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, item: Any) -> Any:
        dropped, self._pending = self._pending, item
        self._wake.set()
        return dropped

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            item, self._pending = self._pending, None
            if item is None:
                continue
            self.busy = True
            try:
                await self._process(item)
            except asyncio.CancelledError:
                raise
            except (
                Exception
            ):  # the processor answers errors itself; this is a last resort
                log.exception("live worker failed")
            finally:
                self.busy = False

    async def aclose(self) -> None:
        self._pending = None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
