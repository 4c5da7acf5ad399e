"""Saving a finished live session as an ``Analysis(kind="live")`` (through the analyses'
models and services, like every other analysis).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

_SUMMARY_NUMBERS = ("duration", "frames", "frames_with_faces", "dropped", "faces_max")


def save_live_session(*, owner, summary: dict[str, Any]):
    """Store a finished live session as ``Analysis(kind="live", status="done")`` owned by ``owner``.

    ``summary`` is ``SessionRecorder.summary()``; the headline emotion is the most frequent face
    label and its confidence the mean probability of that label. Raises ValueError for a summary
    that is not shaped like one (it is never partially saved). Announced on the owner's group
    (``analysis.update``) like every other analysis."""
    from recognition.analyses.models import Analysis

    for key in _SUMMARY_NUMBERS:
        value = summary.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(
                f"live summary field {key!r} must be a non-negative number"
            )
    if not isinstance(summary.get("distribution"), dict) or not isinstance(
        summary.get("timeline"), list
    ):
        raise ValueError("live summary needs a distribution and a timeline")  # noqa: TRY004
    result = {
        k: v for k, v in summary.items() if k not in ("models", "server_ms", "started")
    }
    emotion = summary.get("emotion") or ""
    confidence = summary.get("confidence")
    finished = timezone.now()
    try:
        started = datetime.fromisoformat(summary["started"])
    except (KeyError, TypeError, ValueError):
        started = finished - timedelta(seconds=float(summary["duration"]))
    analysis = Analysis.objects.create(
        owner=owner,
        kind=Analysis.Kind.LIVE,
        status=Analysis.Status.DONE,
        original_name=f"Live session {timezone.localtime(started):%Y-%m-%d %H:%M}",
        progress=100,
        emotion=emotion if isinstance(emotion, str) else "",
        confidence=float(confidence) if isinstance(confidence, (int, float)) else None,
        face_count=int(summary["faces_max"]),
        result=result,
        models_used=summary.get("models") or {},
        timings={
            "server_ms": summary.get("server_ms") or {},
            "duration_s": summary["duration"],
        },
        started=started,
        finished=finished,
    )
    from recognition.analyses import services
    from recognition.operations import metrics

    metrics.count_analysis(Analysis.Kind.LIVE, Analysis.Status.DONE)
    services.notify(analysis)  # open history/dashboard pages update like for uploads
    return analysis
