"""Writes of the corrections: set or clear the true emotion of one item of an analysis, and turn
sharing with the training pool on or off.

They raise ``Http404`` for an analysis that is not the caller's or not finished and an item it
does not have, and ``InvalidLabel`` (a 400) for a label outside the item's model classes; nothing
changes then. Reads are in ``selectors``, the training dataset in ``dataset``.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import Http404

from recognition.analyses import selectors as analyses
from recognition.analyses.models import Analysis
from recognition.corrections.items import ITEM_RE, InvalidLabel, Item, items_of
from recognition.corrections.models import AccountSettings, Correction

__all__ = ["InvalidLabel", "clear_correction", "set_correction", "set_sharing"]


def _item(analysis: Analysis, key: Any) -> Item:
    if not isinstance(key, str) or not ITEM_RE.fullmatch(key):
        raise Http404("No such item in this analysis.")
    if analysis.status != Analysis.Status.DONE:
        raise Http404("This analysis has no finished result to correct.")
    for item in items_of(analysis):
        if item.key == key:
            return item
    raise Http404("No such item in this analysis.")


def set_correction(*, owner: Any, analysis_id: Any, item: Any, label: Any) -> Item:
    """Set or change the true emotion of one item of one of the owner's analyses."""
    analysis = analyses.get_analysis_for(owner, analysis_id)
    found = _item(analysis, item)
    if not isinstance(label, str) or label not in found.classes:
        raise InvalidLabel(f"Choose one of the model's classes: {', '.join(found.classes)}.")
    with transaction.atomic():
        found.correction, _ = Correction.objects.update_or_create(
            analysis=analysis,
            item=found.key,
            defaults={
                "owner": analysis.owner, "task": found.task, "label": label, "predicted": found.predicted or "",
                "confidence": found.confidence if isinstance(found.confidence, (int, float)) else None,
                "model_name": found.model.get("name", "")[:64], "model_version": found.model.get("version", "")[:32],
                "ref": found.ref,
            },
        )
    return found


def clear_correction(*, owner: Any, analysis_id: Any, item: Any) -> bool:
    """Remove the correction of one item (True if there was one); the item must exist."""
    analysis = analyses.get_analysis_for(owner, analysis_id)
    found = _item(analysis, item)
    deleted, _ = Correction.objects.filter(analysis=analysis, item=found.key).delete()
    return bool(deleted)


def set_sharing(*, user: Any, share: bool) -> bool:
    """Turn contributing to the shared pool on or off; returns the new value."""
    if not isinstance(share, bool):
        raise InvalidLabel("share must be true or false.")
    AccountSettings.objects.update_or_create(user=user, defaults={"share_corrections": share})
    return share
