"""Failure counting in the cache (Redis in production, shared by every web process).

Used to slow password guessing on the log-in page: failed attempts are counted per key within a
window, and a key that reached its limit is refused until the window ends. Only failures count,
so people who sign in correctly are never limited.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache


class FailureLimiter:
    """``limits`` maps a key kind (e.g. "ip") to the failures allowed per ``window`` seconds."""

    def __init__(self, prefix: str, window: int) -> None:
        self.prefix, self.window = prefix, window

    def _key(self, kind: str, value: str) -> str:
        # Hashed: any username (spaces, control characters, any length) is a safe cache key.
        digest = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]
        return f"{self.prefix}:{kind}:{digest}"

    def blocked(self, keys: dict[str, str], limits: dict[str, int]) -> bool:
        counts = cache.get_many([self._key(k, v) for k, v in keys.items()])
        return any(counts.get(self._key(k, v), 0) >= limits[k] for k, v in keys.items())

    def fail(self, keys: dict[str, str]) -> None:
        for kind, value in keys.items():
            key = self._key(kind, value)
            if not cache.add(
                key, 1, self.window
            ):  # the window starts at the first failure
                try:
                    cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.add(key, 1, self.window)

    def clear(self, kind: str, value: str) -> None:
        cache.delete(self._key(kind, value))
