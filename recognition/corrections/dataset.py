"""The corrected items as a training dataset: 48x48 grey face crops re-derived from the stored
upload and box through the serving preprocessing (``inference.faces``: detection landmarks, then
``preprocessing.align_face``) and 16 kHz mono WAV windows decoded by ``inference.audio``, with a
manifest; a person's own download and the shared pool an administrator exports."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from django.http import HttpResponse
from django.utils import timezone

from recognition.analyses.models import Analysis
from recognition.corrections.models import Correction
from recognition.corrections.selectors import corrections_for

logger = logging.getLogger("recognition.corrections")  # the name the logs have always shown

MANIFEST_FIELDS = [
    "path", "task", "analysis", "item", "label", "predicted", "confidence", "model", "version",
    "box", "t", "start", "end", "created",
]  # fmt: skip


def _read(analysis: Analysis) -> bytes | None:
    """The analysis's file through the storage API (a bucket or MEDIA_ROOT); None when gone.
    A store that does not answer raises (StorageUnavailable): an export must not silently
    leave out every file."""
    from recognition.analyses import media

    if not analysis.media:
        return None
    try:
        return media.read_bytes(analysis.media.name)
    except media.StoredFileMissing:
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
    from recognition.inference import faces
    from recognition.inference.preprocessing import to_gray

    detections = faces.detect_with_landmarks(bgr, turns=faces.DETECT_TURNS)  # as photos are detected
    best = max(detections, key=lambda d: _iou(d[0], box), default=None)
    landmarks = best[2] if best is not None and _iou(best[0], box) >= 0.5 else None
    return faces.face_crops(to_gray(bgr), [(box, 1.0, landmarks)])[0]


def _image_bgr(data: bytes) -> Any:
    """The photo upright as BGR, decoded as ``services.analyse_image`` does (boxes refer to it)."""
    import numpy as np
    from PIL import Image, ImageOps

    from recognition.analyses import media

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        upright = media.to_rgb(ImageOps.exif_transpose(image))
    return np.ascontiguousarray(np.asarray(upright)[:, :, ::-1])


def _video_frames(analysis: Analysis, data: bytes, times: set[float]) -> dict[float, Any]:
    """The sampled frames at ``times``, decoded at the analysis's own sampling rate."""
    from django.conf import settings

    from recognition.inference import video

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

    from recognition.inference.audio import SAMPLE_RATE

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

    from recognition.inference import audio

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
