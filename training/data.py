"""Dataset readers shared by the training and evaluation commands.

Datasets are never copied into the repository: they are read from ``../shared/datasets`` or a
path given on the command line, and decoded arrays are cached under ``training/cache/`` (ignored).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from recognition.inference.labels import FACE_EMOTIONS
from recognition.inference.preprocessing import resize_face, to_gray

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FER = REPO.parent / "shared" / "datasets" / "fer2013"
DEFAULT_RAVDESS = REPO.parent / "shared" / "datasets" / "ravdess-speech-16k"
CACHE = REPO / "training" / "cache"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def load_face_folder(folder: Path, classes=FACE_EMOTIONS) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``folder/<class>/*.jpg|png`` -> (uint8 faces (N, 48, 48), int labels (N,), file names).

    Unknown class folders are an error; images that fail to decode are skipped with a warning.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of <class>/ image folders")
    extra = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in classes)
    if extra:
        raise ValueError(f"unknown class folders in {folder}: {extra}; expected {list(classes)}")
    faces, labels, names = [], [], []
    for index, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                print(f"warning: skipping unreadable image {path}")
                continue
            faces.append(resize_face(to_gray(image)))
            labels.append(index)
            names.append(f"{name}/{path.name}")
    if not faces:
        raise ValueError(f"no images found under {folder}")
    return np.stack(faces).astype(np.uint8), np.asarray(labels, dtype=np.int64), names


def cached_face_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """``load_face_folder`` with an .npz cache keyed by the folder's path and file list."""
    folder = Path(folder).resolve()
    listing = "\n".join(sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()))
    key = hashlib.sha256(f"{folder}\n{listing}".encode()).hexdigest()[:16]
    path = CACHE / f"faces-{folder.name}-{key}.npz"
    if path.exists():
        data = np.load(path)
        return data["x"], data["y"]
    x, y, _ = load_face_folder(folder)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x=x, y=y)
    return x, y


def load_face_arrays(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """A folder of class folders, or an .npz with ``x`` (N,48,48) uint8 and ``y`` labels."""
    source = Path(source)
    if source.suffix == ".npz":
        data = np.load(source)
        if "jpeg" in data:  # a bundle written by pack_face_folder: decode every image
            blob, offsets = data["jpeg"], data["offsets"]
            faces = [cv2.imdecode(blob[a:b], cv2.IMREAD_GRAYSCALE) for a, b in zip(offsets[:-1], offsets[1:])]
            return np.stack([resize_face(f) for f in faces]).astype(np.uint8), data["y"]
        return data["x"], data["y"]
    return cached_face_folder(source)


def pack_face_folder(folder: Path, out: Path, classes=FACE_EMOTIONS) -> int:
    """Bundle ``folder/<class>/*.jpg`` as their original JPEG bytes in one .npz (about the size of
    the JPEGs, far smaller than decoded pixels) to carry a dataset to a training machine."""
    chunks, labels = [], []
    for index, name in enumerate(classes):
        for path in sorted((Path(folder) / name).glob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                chunks.append(np.frombuffer(path.read_bytes(), dtype=np.uint8))
                labels.append(index)
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in chunks])]).astype(np.int64)
    np.savez(out, jpeg=np.concatenate(chunks), offsets=offsets, y=np.asarray(labels, dtype=np.int64))
    return len(labels)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): ``fraction`` of every class goes to validation."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        n_val = max(1, int(round(len(idx) * fraction))) if len(idx) > 1 else 0
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))
