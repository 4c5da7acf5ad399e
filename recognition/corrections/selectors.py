"""Reads of the corrections: an analysis's items with their corrections, a person's corrections,
the served models' agreement with them, and whether they share them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from recognition.analyses import selectors as analyses
from recognition.corrections.items import Item, items_of
from recognition.corrections.models import AccountSettings, Correction
from recognition.inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS


def items_for(user: Any, analysis_id: Any) -> list[Item]:
    """The items of one of the user's analyses with their corrections (Http404 if not theirs)."""
    analysis = analyses.get_analysis_for(user, analysis_id)
    found = {c.item: c for c in analysis.corrections.all()}
    items = items_of(analysis)
    for item in items:
        item.correction = found.get(item.key)
    return items


def corrections_for(user: Any):
    """The user's corrections, newest change first (none for anonymous users)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Correction.objects.none()
    return Correction.objects.filter(owner=user).select_related("analysis").order_by("-updated", "-id")


def correction_row(c: Correction) -> dict[str, Any]:
    return {
        "analysis": c.analysis_id, "item": c.item, "task": c.task, "label": c.label,
        "predicted": c.predicted or None, "confidence": c.confidence, "agreed": c.agreed,
        "model": {"name": c.model_name, "version": c.model_version}, "ref": c.ref,
        "kind": c.analysis.kind, "original_name": c.analysis.original_name,
        "created": c.created.isoformat(), "updated": c.updated.isoformat(),
    }  # fmt: skip


def _share(n: int, agreed: int) -> dict[str, Any]:
    return {"n": n, "agreed": agreed, "accuracy": round(agreed / n, 4) if n else None}


def agreement_for(user: Any) -> dict[str, Any]:
    """How often the served models agreed with the user's corrections: overall, per task, per
    true class and per model version (each class within it too), with counts."""
    rows = list(corrections_for(user).values_list("task", "label", "predicted", "model_name", "model_version"))
    total = sum(1 for r in rows if r[1] == r[2])
    tasks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    classes: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    versions: dict[tuple[str, str, str], dict[str, Any]] = {}
    for task, label, predicted, name, version in rows:
        hit = int(label == predicted)
        for counter in (tasks[task], classes[(task, label)]):
            counter[0] += 1
            counter[1] += hit
        entry = versions.setdefault((task, name, version), {"counts": [0, 0], "classes": defaultdict(lambda: [0, 0])})
        entry["counts"][0] += 1
        entry["counts"][1] += hit
        entry["classes"][label][0] += 1
        entry["classes"][label][1] += hit
    order = {label: i for i, label in enumerate((*FACE_EMOTIONS, *VOICE_EMOTIONS))}
    return {
        **_share(len(rows), total),
        "by_task": {task: _share(*counts) for task, counts in sorted(tasks.items())},
        "per_class": [
            {"task": task, "label": label, **_share(*counts)}
            for (task, label), counts in sorted(classes.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99), kv[0][1]))
        ],
        "by_model": [
            {
                "task": task, "name": name, "version": version, **_share(*entry["counts"]),
                "per_class": {label: _share(*c) for label, c in sorted(entry["classes"].items(), key=lambda kv: order.get(kv[0], 99))},
            }
            for (task, name, version), entry in sorted(versions.items())
        ],
    }


def sharing_of(user: Any) -> bool:
    """Whether the user contributes their corrections to the shared pool (False by default)."""
    return bool(AccountSettings.objects.filter(user=user, share_corrections=True).exists())

