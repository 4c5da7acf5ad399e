"""All reads of analyses, always scoped to one owner (another user's rows are simply absent)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from django.db.models import Avg, Count, QuerySet
from django.db.models.functions import TruncDate
from django.http import Http404

from recognition.analyses.models import Analysis


def _owned(user: Any) -> QuerySet[Analysis]:
    if user is None or not getattr(user, "is_authenticated", False):
        return Analysis.objects.none()
    return Analysis.objects.filter(owner=user)


def _as_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def analyses_for(
    user: Any,
    *,
    kind: str | None = None,
    emotion: str | None = None,
    date_from: dt.date | str | None = None,
    date_to: dt.date | str | None = None,
) -> QuerySet[Analysis]:
    """The user's analyses, newest first, filtered by kind, headline emotion and an inclusive
    date range (dates as ``date`` or ISO strings; unparseable filters are ignored)."""
    qs = _owned(user)
    if kind:
        qs = qs.filter(kind=kind)
    if emotion:
        qs = qs.filter(emotion=emotion)
    start, end = _as_date(date_from), _as_date(date_to)
    if start:
        qs = qs.filter(created__date__gte=start)
    if end:
        qs = qs.filter(created__date__lte=end)
    return qs.order_by("-created", "-id")


def get_analysis_for(user: Any, pk: Any) -> Analysis:
    """One of the user's analyses; Http404 when it does not exist or belongs to someone else."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such analysis.") from None
    analysis = _owned(user).filter(pk=pk).first()
    if analysis is None:
        raise Http404("No such analysis.")
    return analysis


def status_for(user: Any, ids: list[int]) -> list[Analysis]:
    """The user's analyses among ``ids`` (at most 100), for the polling status endpoint."""
    return list(_owned(user).filter(pk__in=ids[:100]))


def unfinished_counts() -> list[tuple[str, str, int]]:
    """(kind, status, n) of every analysis queued or running now (the metrics' gauge)."""
    return list(
        Analysis.objects.filter(status__in=("queued", "running"))
        .values_list("kind", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )


def stats_for(user: Any) -> dict[str, Any]:
    """Counts for the dashboard: totals, emotion distribution, per day and per modality (the
    API's stats add the corrections' agreement, ``corrections.selectors.agreement_for``)."""
    qs = _owned(user)
    done = qs.filter(status=Analysis.Status.DONE)
    with_emotion = done.exclude(emotion="")
    by_status = dict(
        qs.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    by_kind = dict(
        qs.values_list("kind").annotate(n=Count("id")).values_list("kind", "n")
    )
    distribution = Counter(
        dict(
            with_emotion.values_list("emotion")
            .annotate(n=Count("id"))
            .values_list("emotion", "n")
        )
    )
    by_modality: dict[str, dict[str, int]] = defaultdict(dict)
    for kind, emotion, n in (
        with_emotion.values_list("kind", "emotion")
        .annotate(n=Count("id"))
        .values_list("kind", "emotion", "n")
    ):
        by_modality[kind][emotion] = n
    over_time: dict[str, dict[str, int]] = defaultdict(dict)
    for day, emotion, n in (
        with_emotion.annotate(day=TruncDate("created"))
        .values_list("day", "emotion")
        .annotate(n=Count("id"))
        .values_list("day", "emotion", "n")
        .order_by("day")
    ):
        over_time[day.isoformat()][emotion] = n
    return {
        "total": qs.count(),
        "by_status": by_status,
        "by_kind": by_kind,
        "emotions": dict(distribution.most_common()),
        "by_modality": dict(by_modality),
        "over_time": [
            {"date": day, "emotions": counts}
            for day, counts in sorted(over_time.items())
        ],
        "faces": sum(done.values_list("face_count", flat=True)),
        "average_confidence": with_emotion.aggregate(v=Avg("confidence"))["v"],
    }


EXPORT_FIELDS = [
    "id",
    "created",
    "finished",
    "kind",
    "status",
    "original_name",
    "content_type",
    "size",
    "sha256",
    "emotion",
    "confidence",
    "face_count",
    "error",
    "models_used",
    "timings",
    "result",
]


def export_rows(user: Any) -> list[dict[str, Any]]:
    """The user's whole history as plain dicts (JSON-ready; CSV writers encode dict columns)."""
    rows = []
    for a in _owned(user).order_by("created", "id"):
        rows.append(
            {
                "id": a.pk,
                "created": a.created.isoformat(),
                "finished": a.finished.isoformat() if a.finished else None,
                "kind": a.kind,
                "status": a.status,
                "original_name": a.original_name,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "emotion": a.emotion or None,
                "confidence": a.confidence,
                "face_count": a.face_count,
                "error": a.error or None,
                "models_used": a.models_used,
                "timings": a.timings,
                "result": a.result,
            }
        )
    return rows
