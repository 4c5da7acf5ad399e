"""The one place where a face crop becomes model input. Training and serving both import it,
so cropping, resizing and normalisation cannot drift between them."""
from __future__ import annotations

import cv2
import numpy as np

FACE_SIZE = 48
# Margin added around a detector box before cropping, as a fraction of the box size. Measured:
# on 483 FER2013 test images YuNet's box is 0.99 of the image height, i.e. FER's framing is the
# YuNet box itself; a wider crop made served faces ~23% smaller than the training faces.
FACE_MARGIN = 0.0


def to_gray(image: np.ndarray) -> np.ndarray:
    """BGR/BGRA/grey uint8 image -> 2-D grey uint8."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def expand_box(box: tuple[int, int, int, int], width: int, height: int, margin: float = FACE_MARGIN) -> tuple[int, int, int, int]:
    """Square box around a detector box (x, y, w, h), widened by ``margin`` and clipped to the image."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0 = int(round(max(0.0, cx - side / 2)))
    y0 = int(round(max(0.0, cy - side / 2)))
    x1 = int(round(min(float(width), cx + side / 2)))
    y1 = int(round(min(float(height), cy + side / 2)))
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def crop_face(gray: np.ndarray, box: tuple[int, int, int, int], margin: float = FACE_MARGIN) -> np.ndarray:
    """Grey image + detector box -> 48x48 uint8 face crop."""
    x, y, w, h = expand_box(box, gray.shape[1], gray.shape[0], margin)
    crop = gray[y : y + h, x : x + w]
    return resize_face(crop)


def resize_face(crop: np.ndarray) -> np.ndarray:
    """Any grey crop -> 48x48 uint8 (area interpolation when shrinking)."""
    if crop.shape[:2] == (FACE_SIZE, FACE_SIZE):
        return crop
    interp = cv2.INTER_AREA if min(crop.shape[:2]) > FACE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(crop, (FACE_SIZE, FACE_SIZE), interpolation=interp)


def faces_to_input(faces: np.ndarray) -> np.ndarray:
    """uint8 faces (N, 48, 48) or (48, 48) -> float32 (N, 48, 48, 1) scaled to [0, 1]."""
    faces = np.asarray(faces)
    if faces.ndim == 2:
        faces = faces[None]
    if faces.shape[1:3] != (FACE_SIZE, FACE_SIZE):
        faces = np.stack([resize_face(f) for f in faces])
    return (faces.astype(np.float32) / 255.0)[..., None]
