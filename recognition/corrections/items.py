"""The items of an analysis a person can correct, named as the result pages number them:

- photo: ``face-<n>`` (n from 1, the page's "Face n"); ``ref`` ``{"box": [x, y, w, h]}``
- video: ``track-<id>`` (the page's "Person id"); ``ref`` ``{"track", "box", "t", "first",
  "last"}``, where ``t`` is the sampled frame with the track's largest box (the crop exported)
- recording: ``recording`` (the whole clip) and ``window-<n>`` (n from 1); ``ref`` ``{"start",
  "end"}`` in seconds
- live session: ``session``; ``ref`` ``{"start", "end"}`` (no media is kept: it counts towards
  agreement but has nothing to export)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from recognition.analyses.models import Analysis
from recognition.corrections.models import Correction
from recognition.inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS

ITEM_PATTERN = r"(face|track|window)-[1-9][0-9]{0,5}|recording|session"
ITEM_RE = re.compile(ITEM_PATTERN)


class InvalidLabel(ValueError):
    """A label the item's model does not have (answered 400)."""


@dataclass
class Item:
    key: str
    task: str  # "face" or "voice"
    title: str
    ref: dict[str, Any]
    predicted: str | None
    confidence: float | None
    classes: list[str]
    model: dict[str, str] = field(default_factory=dict)
    correction: Correction | None = None

    def as_dict(self) -> dict[str, Any]:
        c = self.correction
        return {
            "item": self.key,
            "task": self.task,
            "title": self.title,
            "ref": self.ref,
            "predicted": self.predicted,
            "confidence": self.confidence,
            "classes": self.classes,
            "model": self.model,
            "label": c.label if c else None,
            "agreed": (c.label == self.predicted) if c else None,
            "updated": c.updated.isoformat() if c else None,
        }


def _classes(probabilities: Any, default: tuple[str, ...]) -> list[str]:
    """The model's classes (the result's probability keys, else the defaults), in the canonical
    order of ``default`` (a jsonb column does not keep the order of a dict's keys)."""
    if not isinstance(probabilities, dict) or not probabilities:
        return list(default)
    names = [str(k) for k in probabilities]
    return [c for c in default if c in names] + sorted(c for c in names if c not in default)


def _model(analysis: Analysis, task: str) -> dict[str, str]:
    info = (analysis.models_used or {}).get(task) or {}
    if not isinstance(info, dict):
        return {}
    return {"name": str(info.get("name") or ""), "version": str(info.get("version") or "")}


def _frame_of(timeline: list[dict[str, Any]], track: Any, box: Any) -> float | None:
    """The sampled time at which ``track`` had ``box`` (its largest), else its first sample."""
    first = None
    for point in timeline:
        for face in point.get("faces") or []:
            if face.get("track") == track:
                if first is None:
                    first = point.get("t")
                if face.get("box") == box:
                    return point.get("t")
    return first


def items_of(analysis: Analysis) -> list[Item]:
    """Every correctable item of a finished analysis (empty for one that is not done)."""
    if analysis.status != Analysis.Status.DONE:
        return []
    result = analysis.result if isinstance(analysis.result, dict) else {}
    items: list[Item] = []
    if analysis.kind == Analysis.Kind.IMAGE:
        for n, face in enumerate(result.get("faces") or [], start=1):
            items.append(Item(
                f"face-{n}", "face", f"Face {n}", {"box": face.get("box")}, face.get("emotion"),
                face.get("confidence"), _classes(face.get("probabilities"), FACE_EMOTIONS), _model(analysis, "face"),
            ))  # fmt: skip
    elif analysis.kind == Analysis.Kind.VIDEO:
        for face in result.get("faces") or []:
            track = face.get("track")
            ref = {
                "track": track, "box": face.get("box"), "t": _frame_of(result.get("timeline") or [], track, face.get("box")),
                "first": face.get("first"), "last": face.get("last"),
            }  # fmt: skip
            items.append(Item(
                f"track-{track}", "face", f"Person {track}", ref, face.get("emotion"), face.get("confidence"),
                _classes(face.get("probabilities"), FACE_EMOTIONS), _model(analysis, "face"),
            ))  # fmt: skip
    elif analysis.kind == Analysis.Kind.AUDIO:
        classes = _classes(result.get("probabilities"), VOICE_EMOTIONS)
        model = _model(analysis, "voice")
        items.append(Item(
            "recording", "voice", "Whole recording", {"start": 0.0, "end": result.get("duration")},
            result.get("emotion"), result.get("confidence"), classes, model,
        ))  # fmt: skip
        for n, window in enumerate(result.get("windows") or [], start=1):
            items.append(Item(
                f"window-{n}", "voice", f"{window.get('start', 0):.1f}–{window.get('end', 0):.1f} s",
                {"start": window.get("start"), "end": window.get("end")}, window.get("emotion"),
                window.get("confidence"), classes, model,
            ))  # fmt: skip
    elif analysis.kind == Analysis.Kind.LIVE:
        items.append(Item(
            "session", "face", "Whole session", {"start": 0.0, "end": result.get("duration")}, result.get("emotion"),
            result.get("confidence"), _classes(result.get("probabilities"), FACE_EMOTIONS), _model(analysis, "face"),
        ))  # fmt: skip
    return items

