"""People's corrected items exported by the site (``recognition.corrections``: the corrections
page, ``GET /api/v1/corrections/export.zip``, ``manage.py export_corrections``) as extra
training data: ``--extra-data PATH`` (repeatable) on the face trainers.

PATH is the export's folder or its .zip: ``face/<label>/*.png`` (48x48 grey crops, FER2013's
layout), ``voice/<label>/*.wav`` and ``manifest.csv``. A folder of class folders without a
``face/`` level (FER2013 itself, or a hand-made set) is read as is. What was used goes into the
model card: ``extra_data: [{path, manifest_sha256, counts}]``.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from recognition.inference.labels import FACE_EMOTIONS


def _folder(path: Path) -> Path:
    """The export as a folder: a .zip is unpacked into a temporary folder (kept for the run)."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        target = Path(tempfile.mkdtemp(prefix="extra-data-"))
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():  # no absolute paths or "..": stay inside target
                if member.startswith("/") or ".." in Path(member).parts:
                    raise SystemExit(f"--extra-data {path}: unsafe member {member!r}")
            archive.extractall(target)
        return target
    if not path.is_dir():
        raise SystemExit(f"--extra-data {path} is neither a folder nor a .zip export")
    return path


def load_face_extra(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(uint8 faces (N, 48, 48), labels (N,) in FACE_EMOTIONS order, card entry) of one export."""
    from training import data as datasets

    folder = _folder(path)
    faces_dir = folder / "face" if (folder / "face").is_dir() else folder
    manifest = folder / "manifest.csv"
    entry: dict = {
        "path": str(path),
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None,
    }
    has_images = faces_dir.is_dir() and any(p.suffix.lower() in datasets.IMAGE_SUFFIXES for p in faces_dir.rglob("*"))
    if not has_images:
        return np.zeros((0, 48, 48), np.uint8), np.zeros((0,), np.int64), {**entry, "counts": {}, "n": 0}
    x, y, _ = datasets.load_face_folder(faces_dir)
    counts = {FACE_EMOTIONS[i]: int(n) for i, n in enumerate(np.bincount(y, minlength=len(FACE_EMOTIONS))) if n}
    return x, y, {**entry, "counts": counts, "n": len(y)}


def load_all(paths: list[Path] | None) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Every ``--extra-data`` export concatenated, and one card entry per export."""
    xs, ys, entries = [], [], []
    for path in paths or []:
        x, y, entry = load_face_extra(path)
        xs.append(x)
        ys.append(y)
        entries.append(entry)
    if not xs:
        return np.zeros((0, 48, 48), np.uint8), np.zeros((0,), np.int64), []
    return np.concatenate(xs).astype(np.uint8), np.concatenate(ys).astype(np.int64), entries


def markdown(card: dict) -> str:
    """The model card's words for the extra data used ('' when none)."""
    used = card.get("extra_data") or []
    if not used:
        return ""
    parts = [
        f"{e['n']} faces from `{Path(e['path']).name}` (manifest sha256 `{(e.get('manifest_sha256') or 'none')[:12]}`: "
        + ", ".join(f"{label} {n}" for label, n in e["counts"].items())
        + ")"
        for e in used
    ]
    return " Extra training data (people's corrections, `--extra-data`): " + "; ".join(parts) + "."


EXTRA_ACTOR = 0  # voice: extra clips count as actor 0, never one of the validation or test actors


def voice_clips(paths: list[Path] | None) -> tuple[list, list[dict]]:
    """(``training.clips.Clip``s of every export's ``voice/<label>/*.wav``, card entries)."""
    from recognition.inference.labels import VOICE_EMOTIONS
    from training.clips import Clip

    clips, entries = [], []
    for path in paths or []:
        folder = _folder(path)
        manifest = folder / "manifest.csv"
        found = []
        for index, label in enumerate(VOICE_EMOTIONS):
            found += [Clip(p, index, EXTRA_ACTOR) for p in sorted((folder / "voice" / label).glob("*.wav"))]
        counts: dict[str, int] = {}
        for clip in found:
            counts[VOICE_EMOTIONS[clip.label]] = counts.get(VOICE_EMOTIONS[clip.label], 0) + 1
        entries.append({
            "path": str(path),
            "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None,
            "counts": counts, "n": len(found),
        })  # fmt: skip
        clips += found
    return clips, entries
