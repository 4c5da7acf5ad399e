"""People correct results: the true emotion of one item of an analysis, the served model's
agreement with those corrections, and the corrected items as a training dataset.

Items of an analysis (``items_of``), named as the result pages number them:

- photo: ``face-<n>`` (n from 1, the page's "Face n"); ``ref`` ``{"box": [x, y, w, h]}``
- video: ``track-<id>`` (the page's "Person id"); ``ref`` ``{"track", "box", "t", "first",
  "last"}``, where ``t`` is the sampled frame with the track's largest box (the crop exported)
- recording: ``recording`` (the whole clip) and ``window-<n>`` (n from 1); ``ref`` ``{"start",
  "end"}`` in seconds
- live session: ``session``; ``ref`` ``{"start", "end"}`` (no media is kept: it counts towards
  agreement but has nothing to export)

Writes (``set_correction``, ``clear_correction``, ``set_sharing``) raise ``Http404`` for an
analysis that is not the caller's or not finished and an item it does not have, and
``InvalidLabel`` (a 400) for a label outside the item's model classes; nothing changes then.
The dataset (``write_dataset``) holds 48x48 grey face crops re-derived from the stored upload and
box through the serving preprocessing (``inference.faces``: detection landmarks, then
``preprocessing.align_face``) and 16 kHz mono WAV windows decoded by ``inference.audio``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.http import Http404, HttpResponse
from django.utils import timezone

from . import selectors
from .inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS
from .models import AccountSettings, Analysis, Correction

logger = logging.getLogger(__name__)

ITEM_PATTERN = r"(face|track|window)-[1-9][0-9]{0,5}|recording|session"
_ITEM_RE = re.compile(ITEM_PATTERN)
MANIFEST_FIELDS = [
    "path", "task", "analysis", "item", "label", "predicted", "confidence", "model", "version",
    "box", "t", "start", "end", "created",
]  # fmt: skip


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


# ----------------------------------------------------------------------------- reads


def items_for(user: Any, analysis_id: Any) -> list[Item]:
    """The items of one of the user's analyses with their corrections (Http404 if not theirs)."""
    analysis = selectors.get_analysis_for(user, analysis_id)
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


# ----------------------------------------------------------------------------- writes


def _item(analysis: Analysis, key: Any) -> Item:
    if not isinstance(key, str) or not _ITEM_RE.fullmatch(key):
        raise Http404("No such item in this analysis.")
    if analysis.status != Analysis.Status.DONE:
        raise Http404("This analysis has no finished result to correct.")
    for item in items_of(analysis):
        if item.key == key:
            return item
    raise Http404("No such item in this analysis.")


def set_correction(*, owner: Any, analysis_id: Any, item: Any, label: Any) -> Item:
    """Set or change the true emotion of one item of one of the owner's analyses."""
    analysis = selectors.get_analysis_for(owner, analysis_id)
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
    analysis = selectors.get_analysis_for(owner, analysis_id)
    found = _item(analysis, item)
    deleted, _ = Correction.objects.filter(analysis=analysis, item=found.key).delete()
    return bool(deleted)


def set_sharing(*, user: Any, share: bool) -> bool:
    """Turn contributing to the shared pool on or off; returns the new value."""
    if not isinstance(share, bool):
        raise InvalidLabel("share must be true or false.")
    AccountSettings.objects.update_or_create(user=user, defaults={"share_corrections": share})
    return share


# ----------------------------------------------------------------------------- dataset export


def _read(analysis: Analysis) -> bytes | None:
    from django.core.files.storage import default_storage

    if not analysis.media:
        return None
    try:
        with default_storage.open(analysis.media.name, "rb") as fh:
            return fh.read()
    except (OSError, ValueError):
        return None


def _iou(a: list[int], b: list[int]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w, h = min(ax1, bx1) - max(a[0], b[0]), min(ay1, by1) - max(a[1], b[1])
    inter = max(0, w) * max(0, h)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def face_crop(bgr: Any, box: list[int]) -> Any:
    """The 48x48 grey crop the model saw for ``box`` in ``bgr``: the detector is run again for
    the face's landmarks (the stored box is the detector's own, so it is found again), then the
    crop goes through ``faces.face_crops`` exactly as at analysis time."""
    from .inference import faces
    from .inference.preprocessing import to_gray

    detections = faces.detect_with_landmarks(bgr, turns=faces.DETECT_TURNS)  # as photos are detected
    best = max(detections, key=lambda d: _iou(d[0], box), default=None)
    landmarks = best[2] if best is not None and _iou(best[0], box) >= 0.5 else None
    return faces.face_crops(to_gray(bgr), [(box, 1.0, landmarks)])[0]


def _image_bgr(data: bytes) -> Any:
    """The photo upright as BGR, decoded as ``services.analyse_image`` does (boxes refer to it)."""
    import numpy as np
    from PIL import Image, ImageOps

    from . import media

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        upright = media.to_rgb(ImageOps.exif_transpose(image))
    return np.ascontiguousarray(np.asarray(upright)[:, :, ::-1])


def _video_frames(analysis: Analysis, data: bytes, times: set[float]) -> dict[float, Any]:
    """The sampled frames at ``times``, decoded at the analysis's own sampling rate."""
    from django.conf import settings

    from .inference import video

    frames: dict[float, Any] = {}

    def keep(sample: Any) -> None:
        if sample.t in times:
            frames[sample.t] = sample.bgr

    video.decode_samples(
        data, sample_fps=float((analysis.result or {}).get("sample_fps") or settings.VIDEO_SAMPLE_FPS),
        max_seconds=float(settings.MAX_VIDEO_SECONDS), max_pixels=int(settings.MAX_VIDEO_PIXELS), on_sample=keep,
    )  # fmt: skip
    return frames


def _wav(signal: Any) -> bytes:
    import numpy as np
    import soundfile

    from .inference.audio import SAMPLE_RATE

    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(signal, dtype=np.float32), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _png(crop: Any) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", crop)
    if not ok:  # pragma: no cover - a 48x48 uint8 array always encodes
        raise ValueError("could not encode the face crop")
    return encoded.tobytes()


def dataset_files(corrections: list[Correction]) -> tuple[list[tuple[str, bytes, dict[str, Any]]], int]:
    """([(path in the dataset, file bytes, manifest row)], items skipped): one file per corrected
    face (PNG) or voice item (WAV). Items with nothing to export (live sessions, a missing or
    undecodable file, a window with no samples) are skipped and counted."""
    from django.conf import settings

    from .inference import audio

    by_analysis: dict[int, list[Correction]] = defaultdict(list)
    for c in corrections:
        by_analysis[c.analysis_id].append(c)
    out: list[tuple[str, bytes, dict[str, Any]]] = []
    skipped = 0
    for group in by_analysis.values():
        analysis = group[0].analysis
        data = _read(analysis) if analysis.kind != Analysis.Kind.LIVE else None
        if data is None:
            skipped += len(group)
            continue
        try:
            files = _files_of(analysis, data, group, settings, audio)
        except Exception:  # a file that no longer decodes: its items are skipped, not the export
            logger.warning("could not export corrections of analysis %s", analysis.pk, exc_info=True)
            skipped += len(group)
            continue
        skipped += len(group) - len(files)
        out.extend(files)
    out.sort(key=lambda f: f[0])
    return out, skipped


def _files_of(analysis: Analysis, data: bytes, group: list[Correction], settings: Any, audio: Any) -> list:
    files = []

    def add(c: Correction, suffix: str, payload: bytes) -> None:
        path = f"{c.task}/{c.label}/{analysis.pk}-{c.item}.{suffix}"
        ref = c.ref or {}
        files.append((path, payload, {
            "path": path, "task": c.task, "analysis": analysis.pk, "item": c.item, "label": c.label,
            "predicted": c.predicted, "confidence": "" if c.confidence is None else round(c.confidence, 4),
            "model": c.model_name, "version": c.model_version,
            "box": " ".join(str(int(v)) for v in ref["box"]) if isinstance(ref.get("box"), list) else "",
            "t": ref.get("t", ""), "start": ref.get("start", ""), "end": ref.get("end", ""),
            "created": c.created.isoformat(),
        }))

    if analysis.kind == Analysis.Kind.IMAGE:
        bgr = _image_bgr(data)
        for c in group:
            add(c, "png", _png(face_crop(bgr, list(c.ref["box"]))))
    elif analysis.kind == Analysis.Kind.VIDEO:
        frames = _video_frames(analysis, data, {c.ref.get("t") for c in group})
        for c in group:
            if c.ref.get("t") in frames:
                add(c, "png", _png(face_crop(frames[c.ref["t"]], list(c.ref["box"]))))
    elif analysis.kind == Analysis.Kind.AUDIO:
        signal = audio.as_signal(data, max_seconds=float(settings.MAX_AUDIO_SECONDS))
        for c in group:
            start = round(float(c.ref.get("start") or 0) * audio.SAMPLE_RATE)
            end = c.ref.get("end")
            stop = len(signal) if end is None else round(float(end) * audio.SAMPLE_RATE)
            piece = signal[max(0, start) : min(len(signal), stop)]
            if len(piece):
                add(c, "wav", _wav(piece))
    return files


def manifest_csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


README = """Corrected items exported by emotionsite ({when}).

face/<label>/<analysis>-<item>.png  48x48 grey face crops, as the face model saw them (FER2013 layout)
voice/<label>/<analysis>-<item>.wav 16 kHz mono 16-bit WAV of the corrected recording or window
manifest.csv                        one row per file: label (the person's), the model's prediction and version

Train on it: python -m training.train_face_vgg --extra-data <this folder> ... (repeatable).
{skipped} corrected item(s) had nothing to export (live sessions keep no media) and are not included.
"""


def write_dataset(corrections: list[Correction], target: Any) -> dict[str, Any]:
    """Write the dataset of ``corrections`` as a zip into the binary file ``target`` (or a
    folder, when ``target`` is a Path to a directory). Returns counts and the manifest's sha256."""
    files, skipped = dataset_files(corrections)
    manifest = manifest_csv([row for _, _, row in files])
    readme = README.format(when=timezone.now().isoformat(timespec="seconds"), skipped=skipped).encode()
    entries = [*((p, b) for p, b, _ in files), ("manifest.csv", manifest), ("README.txt", readme)]
    if isinstance(target, Path):
        target.mkdir(parents=True, exist_ok=True)
        for path, payload in entries:
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_bytes(payload)
    else:
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, payload in entries:
                archive.writestr(path, payload)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, _, row in files:
        counts[row["task"]][row["label"]] += 1
    return {
        "files": len(files), "skipped": skipped, "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "counts": {task: dict(labels) for task, labels in counts.items()},
    }  # fmt: skip


def dataset_response(user: Any) -> HttpResponse:
    """The user's corrected items as a zip download (never cached)."""
    buffer = io.BytesIO()
    write_dataset(list(corrections_for(user)), buffer)
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="emotionsite-corrections-{stamp}.zip"'
    response["Cache-Control"] = "private, no-store"
    return response


def pool_corrections() -> list[Correction]:
    """The shared pool: corrections of every account that has sharing on now (an account that
    turns it off is out of every export from then on)."""
    return list(
        Correction.objects.filter(owner__account_settings__share_corrections=True, owner__is_active=True)
        .select_related("analysis")
        .order_by("analysis_id", "item")
    )
