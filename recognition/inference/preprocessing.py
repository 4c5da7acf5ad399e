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


# Aligned crops (``align_face``), measured on 588 FER2013 training faces upscaled to 240 px as
# the detector sees them: the YuNet box (= FER's framing) is 2.57 eye-to-mouth distances wide and
# centred 0.35 of that distance below the midpoint of the eyes. Both are rotation-invariant, so a
# tilted face is framed as an upright one is.
ALIGN_SIDE = 2.57
ALIGN_CENTRE_DROP = 0.35
# Eyes tilted by less than this are left as they are (FER2013's own faces tilt a few degrees,
# and then the crop is exactly ``crop_face``'s).
ALIGN_MIN_DEGREES = 5.0


def eye_angle(landmarks: np.ndarray) -> float:
    """Degrees the line from the face's right eye (image left) to its left eye rises clockwise;
    0 for level eyes. ``landmarks``: YuNet's five points (right eye, left eye, nose, mouth
    corners) as (5, 2) x, y."""
    (rx, ry), (lx, ly) = landmarks[0], landmarks[1]
    return float(np.degrees(np.arctan2(ly - ry, lx - rx)))


def align_face(gray: np.ndarray, box: tuple[int, int, int, int], landmarks: np.ndarray | None) -> np.ndarray:
    """Grey image + detector box + five landmarks -> 48x48 uint8 face with level eyes.

    Without landmarks, or with eyes within ``ALIGN_MIN_DEGREES`` of level, this is ``crop_face``.
    Otherwise the face is rotated about its centre (from the landmarks) so the eyes are level and
    cut ``ALIGN_SIDE`` eye-to-mouth distances wide, as FER2013 frames an upright face; parts
    outside the image repeat the edge."""
    if landmarks is None:
        return crop_face(gray, box)
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    angle = eye_angle(landmarks)
    if abs(angle) < ALIGN_MIN_DEGREES:
        return crop_face(gray, box)
    eyes = landmarks[:2].mean(axis=0)
    mouth = landmarks[3:5].mean(axis=0)
    distance = float(np.linalg.norm(mouth - eyes))
    if distance < 1.0:
        return crop_face(gray, box)
    down = (mouth - eyes) / distance  # the face's own "down", whatever the tilt
    # The centre sits along the eye-mouth line; project the measured drop onto it.
    centre = eyes + down * ALIGN_CENTRE_DROP * distance
    side = ALIGN_SIDE * distance
    # Work on a region around the face only: rotate it at its own resolution, then let
    # resize_face shrink it with area interpolation, as crop_face does.
    half = int(np.ceil(side * 0.75)) + 2
    cx, cy = float(centre[0]), float(centre[1])
    x0, y0 = int(np.floor(cx)) - half, int(np.floor(cy)) - half
    region = square_region(gray, x0, y0, 2 * half)
    local = (cx - x0, cy - y0)
    matrix = cv2.getRotationMatrix2D(local, angle, 1.0)
    rotated = cv2.warpAffine(region, matrix, (region.shape[1], region.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    s0 = int(round(side))
    left, top = int(round(local[0] - s0 / 2)), int(round(local[1] - s0 / 2))
    return resize_face(rotated[max(0, top) : top + s0, max(0, left) : left + s0])


def square_region(gray: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The ``side`` x ``side`` square of ``gray`` at (x0, y0); parts outside the image repeat
    its edge (cv2.BORDER_REPLICATE)."""
    return cv2.copyMakeBorder(
        gray[max(0, y0) : max(0, y0 + side), max(0, x0) : max(0, x0 + side)],
        max(0, -y0), max(0, y0 + side - gray.shape[0]), max(0, -x0), max(0, x0 + side - gray.shape[1]),
        cv2.BORDER_REPLICATE,
    )


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
