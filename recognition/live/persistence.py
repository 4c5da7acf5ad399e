"""Saving a finished live session: the analyses app's ``services.save_live_session`` (the one
path for server and on-device sessions), under the name the live socket has always called."""

from __future__ import annotations

from typing import Any


def save_live_session(*, owner, summary: dict[str, Any]):
    """``recognition.analyses.services.save_live_session``: ``Analysis(kind="live")`` from a
    ``SessionRecorder.summary()``; ValueError for a malformed one (nothing saved)."""
    from recognition.analyses import services

    return services.save_live_session(owner=owner, summary=summary)
