"""Faces in a photo -> box, emotion and probabilities per face (pages, API, Celery, websocket).

Why one module over 400 lines: detection, crops and classification are the one photo pipeline
that uploads, video frames and live frames share step by step (video calls the steps).

Detection uses YuNet (``models/face_detection_yunet.onnx``) run by ONNX Runtime
(``inference/yunet.py``, one session shared by all threads), or with ``DETECTOR_ENGINE=opencv``
through ``cv2.FaceDetectorYN`` (one detector per thread: OpenCV's DNN nets are not safe to share
between threads); images scaled
to at most ``DETECT_MAX_SIDE`` for detection and boxes mapped back to the original pixels.
Every face is cropped by ``preprocessing.align_face`` (eyes levelled from YuNet's landmarks, then
framed as FER2013 frames its faces; ``crop_face`` for faces already upright) and all
faces of an image go through the served model in one batch. The model is loaded once per process
by ``registry``; its name, version and classes come from its card.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from recognition.inference import config, engine, registry, yunet
from recognition.inference.errors import InvalidMedia
from recognition.inference.images import decode_image
from recognition.inference.preprocessing import (
    ALIGN_MIN_DEGREES,
    align_face,
    eye_angle,
    faces_to_input,
    square_region,
    to_gray,
)
from recognition.inference.tracking import FaceTracks

DETECTOR_FILE = "face_detection_yunet.onnx"
# Chosen with benchmarks/compare_detectors.py (numbers in benchmarks/README.md): at 640-960 px
# YuNet finds every clear face of both test photos with no false box; true faces score >= 0.72,
# the one false box (a shoe) <= 0.44, so 0.6 keeps a margin on both sides. 960 rather than 640
# keeps the small faces of large group photos above YuNet's ~10 px floor.
DETECT_MAX_SIDE = 960
# Smaller images (thumbnails, 48x48 face crops) are upscaled to this for YuNet.
DETECT_MIN_SIDE = 240
SCORE_THRESHOLD = 0.6
NMS_THRESHOLD = 0.3
TOP_K = 500
MAX_FACES = 64  # faces classified per image (highest detector scores first)
# Below this box side (in the pixels analysed) a face is marked ``too_small`` and shown as "too
# small to judge". Measured on the face models' validation split (FER2013 faces shrunk to s px
# and enlarged back, served face_vgg): 63.9% at 48 px, 61.8% at 40, 59.8% at 32, 53.1% at 24,
# 47.1% at 20, 40.9% at 16, with the model as confident at 16 px as at 48 (training/evaluate_pose).
MIN_JUDGE_PX = 32
MIN_BOX_PX = 2
# Extra detector views for photos and video samples: the image turned by these angles, so faces
# tilted beyond what YuNet finds upright (75-79% found at 30 degrees, 37% at 45) are found too.
# Chosen on the validation split by training/evaluate_rotation.py (the table is in benchmarks/README.md).
DETECT_TURNS: tuple[float, ...] = (30.0, -30.0)
# The turned views' size relative to the upright view's (detection costs about its pixels).
TURN_SCALE = 1.0

Box = list[int]

_local = threading.local()


def detector_path() -> Path:
    """The YuNet file: ``MODELS_DIR`` first, then the copy shipped in the repository."""
    for directory in (
        registry.models_dir(),
        Path(__file__).resolve().parents[2] / "models",
    ):
        path = directory / DETECTOR_FILE
        if path.exists():
            return path
    raise registry.ModelUnavailable(
        f"face detector {DETECTOR_FILE} is missing from {registry.models_dir()}"
    )


def _detector(width: int, height: int) -> Any:
    """This thread's YuNet detector, sized for a (width, height) input."""
    detector = getattr(_local, "detector", None)
    if detector is None:
        level = (
            cv2.utils.logging.getLogLevel()
        )  # hide "targets not supported" on creation
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            detector = cv2.FaceDetectorYN.create(
                str(detector_path()),
                "",
                (width, height),
                SCORE_THRESHOLD,
                NMS_THRESHOLD,
                TOP_K,
            )
        except cv2.error as exc:
            raise registry.ModelUnavailable(
                f"face detector {detector_path()} could not be loaded: {exc}"
            ) from exc
        finally:
            cv2.utils.logging.setLogLevel(level)
        _local.detector = detector
        _local.size = None
    if _local.size != (width, height):
        detector.setInputSize((width, height))
        _local.size = (width, height)
    return detector


def as_bgr(image: np.ndarray) -> np.ndarray:
    """A decoded image array (grey, BGR or BGRA uint8) -> contiguous BGR; InvalidMedia otherwise."""
    if not isinstance(image, np.ndarray):
        raise InvalidMedia(f"Expected an image array, got {type(image).__name__}.")
    if image.dtype != np.uint8:
        raise InvalidMedia(f"Expected an 8-bit image array, got {image.dtype}.")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.size else image
    elif image.ndim == 3 and image.shape[2] == 3:
        bgr = image
    elif image.ndim == 3 and image.shape[2] == 4:
        bgr = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    else:
        raise InvalidMedia(
            f"Expected a grey, BGR or BGRA image array, got shape {image.shape}."
        )
    if bgr.size == 0:
        raise InvalidMedia("The image has no pixels.")
    max_pixels = config.get().max_image_pixels
    if bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise InvalidMedia(
            f"The image is too large: more than {max_pixels / 1e6:g} megapixels."
        )
    return np.ascontiguousarray(bgr)


def detect_with_scores(
    bgr: np.ndarray,
    *,
    score_threshold: float = SCORE_THRESHOLD,
    max_side: int = DETECT_MAX_SIDE,
) -> list[tuple[Box, float]]:
    """[(box [x, y, w, h] in ``bgr``'s pixels, detector score)], left to right."""
    return [(box, score) for box, score, _ in detect_with_landmarks(bgr, score_threshold=score_threshold, max_side=max_side)]


class TurnedLandmarks(np.ndarray):
    """Landmarks found in a view turned by ``turn`` degrees, where the face was near upright:
    already what ``refine_landmarks`` would look for, so it does not look again."""

    turn: float = 0.0


def detect_with_landmarks(
    bgr: np.ndarray,
    *,
    score_threshold: float = SCORE_THRESHOLD,
    max_side: int = DETECT_MAX_SIDE,
    turns: Sequence[float] = (),
    upright: bool = True,
    turn_scale: float | None = None,
) -> list[tuple[Box, float, np.ndarray]]:
    """[(box [x, y, w, h], detector score, (5, 2) landmarks: right eye, left eye, nose, right and
    left mouth corner)], all in ``bgr``'s pixels, left to right.

    ``turns``: also look at the image turned by each of these angles (degrees, counter-clockwise),
    for faces the detector misses when tilted (``DETECT_TURNS``); a face found in a turned view
    comes back with its box (its own size, about its centre) and landmarks turned back into the
    image, and the detections of all views are merged by non-maximum suppression (the best score
    of overlapping boxes wins). ``upright=False`` looks at the turned views only. The turned views
    are looked at ``turn_scale`` (default ``TURN_SCALE``) times the upright view's size, never
    below ``DETECT_MIN_SIDE``."""
    bgr = as_bgr(bgr)
    height, width = bgr.shape[:2]
    long_side = max(height, width)
    scale = (
        min(1.0, max_side / long_side)
        if long_side > DETECT_MIN_SIDE
        else DETECT_MIN_SIDE / long_side
    )
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(bgr, size, interpolation=interpolation)
    else:
        small = bgr
    turned: list = []
    if turns:
        shrink = min(1.0, max(TURN_SCALE if turn_scale is None else turn_scale, DETECT_MIN_SIDE / max(small.shape[:2])))
        view = small if shrink >= 1.0 else cv2.resize(
            small, (max(1, round(small.shape[1] * shrink)), max(1, round(small.shape[0] * shrink))), interpolation=cv2.INTER_AREA)
        pool = engine.side_pool() if len(turns) + upright > 1 else None
        for turn in turns:  # the turned views run beside the upright one when there is a pool
            args = (view, float(turn), scale * shrink, width, height, score_threshold)
            turned.append(pool.submit(_turned_detections, *args) if pool else _turned_detections(*args))
    found: list[tuple[Box, float, np.ndarray]] = []
    for row in _detect_rows(small, score_threshold) if upright else ():
        x0 = max(0, int(np.floor(row[0] / scale)))
        y0 = max(0, int(np.floor(row[1] / scale)))
        x1 = min(width, int(np.ceil((row[0] + row[2]) / scale)))
        y1 = min(height, int(np.ceil((row[1] + row[3]) / scale)))
        if x1 - x0 >= MIN_BOX_PX and y1 - y0 >= MIN_BOX_PX:
            landmarks = np.asarray(row[4:14], dtype=np.float64).reshape(5, 2) / scale
            found.append(([x0, y0, x1 - x0, y1 - y0], float(row[-1]), landmarks))
    for result in turned:
        found += result.result() if isinstance(result, Future) else result
    if turns:
        found = _suppress(found)
    return sorted(found, key=_left_to_right)


def _left_to_right(detection: tuple[Box, float, np.ndarray]) -> tuple[int, int]:
    return detection[0][0], detection[0][1]


def detector_engine() -> str:
    """What runs YuNet: ``DETECTOR_ENGINE`` "onnx" (ONNX Runtime, ``inference/yunet.py``; the
    default: 1.6-1.9x faster here, same rows) or "opencv" (``cv2.FaceDetectorYN``)."""
    return "opencv" if os.environ.get("DETECTOR_ENGINE", "onnx").strip().lower() == "opencv" else "onnx"


def _detect_rows(image: np.ndarray, score_threshold: float) -> np.ndarray | tuple:
    if detector_engine() == "onnx":
        path = detector_path()
        try:
            net = yunet.get(path, engine.default_threads())
        except Exception as exc:  # onnxruntime says why a file cannot load in many ways
            raise registry.ModelUnavailable(f"face detector {path} could not be loaded: {exc}") from exc
        return net.detect(image, score_threshold, NMS_THRESHOLD, TOP_K)
    detector = _detector(image.shape[1], image.shape[0])
    detector.setScoreThreshold(float(score_threshold))
    _, rows = detector.detect(image)
    return rows if rows is not None else ()


def _turned_detections(small: np.ndarray, turn: float, scale: float, width: int, height: int, score_threshold: float) -> list[tuple[Box, float, np.ndarray]]:
    """Detections in ``small`` turned by ``turn`` degrees about its centre (same size, grey where
    the turn brings in nothing), mapped back to the original image's pixels."""
    h, w = small.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), turn, 1.0)
    # The turned view keeps the image's size (its corners are cut): on 150 validation faces this
    # found as many faces as a canvas holding the whole turned image, and one more face of the
    # group photo turned by 30 degrees, at 0.6x the time (1.9x fewer pixels per view).
    view = cv2.warpAffine(small, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(127, 127, 127))
    back = cv2.invertAffineTransform(matrix)
    found = []
    for row in _detect_rows(view, score_threshold):
        bw, bh = row[2] / scale, row[3] / scale
        centre = _turn_points(np.array([[row[0] + row[2] / 2, row[1] + row[3] / 2]]), back)[0] / scale
        x0, y0 = max(0, int(np.floor(centre[0] - bw / 2))), max(0, int(np.floor(centre[1] - bh / 2)))
        x1, y1 = min(width, int(np.ceil(centre[0] + bw / 2))), min(height, int(np.ceil(centre[1] + bh / 2)))
        if x1 - x0 < MIN_BOX_PX or y1 - y0 < MIN_BOX_PX:
            continue
        points = _turn_points(np.asarray(row[4:14], dtype=np.float64).reshape(5, 2), back) / scale
        landmarks = points.view(TurnedLandmarks)
        landmarks.turn = turn
        found.append(([x0, y0, x1 - x0, y1 - y0], float(row[-1]), landmarks))
    return found


def _suppress(detections: list[tuple[Box, float, np.ndarray]]) -> list[tuple[Box, float, np.ndarray]]:
    """Non-maximum suppression over the views: highest score first, a box overlapping a kept one
    by ``NMS_THRESHOLD`` (IoU) or more is the same face seen again."""
    from recognition.inference.tracking import iou

    kept: list[tuple[Box, float, np.ndarray]] = []
    for detection in sorted(detections, key=lambda d: -d[1]):
        if all(iou(detection[0], other[0]) < NMS_THRESHOLD for other in kept):
            kept.append(detection)
    return kept


def detect_in_frame(bgr: np.ndarray, tracks: FaceTracks | None) -> list[tuple[Box, float, np.ndarray]]:
    """A photo's or a tracked frame's detections. A photo gets every turned view
    (``DETECT_TURNS``). A frame of a live session or video (``tracks``) gets the turned views its
    tracks need (``FaceTracks.turns``: those that found a face last time, all of them every
    ``TURN_EVERY`` frames), and all of them again at once when a face seen in the last frame
    would otherwise be lost, so an upright scene pays for turned views one frame in ten."""
    if tracks is None:
        return detect_with_landmarks(bgr, turns=DETECT_TURNS)
    turns = tracks.turns(DETECT_TURNS)
    found = detect_with_landmarks(bgr, turns=turns)
    missing = [turn for turn in DETECT_TURNS if turn not in turns]
    if missing and tracks.would_lose([box for box, _, _ in found]):  # only the views not yet looked at
        found = _suppress(found + detect_with_landmarks(bgr, turns=missing, upright=False))
        found.sort(key=_left_to_right)
    return found


def detect_faces(
    bgr: np.ndarray, *, score_threshold: float = SCORE_THRESHOLD
) -> list[Box]:
    """Boxes [x, y, w, h] (ints, original pixels) of every face in a BGR or grey image."""
    return [box for box, _ in detect_with_scores(bgr, score_threshold=score_threshold)]


def detection_at(detections: Sequence[tuple[Box, float, np.ndarray]], point: tuple[float, float]) -> tuple[Box, float, np.ndarray] | None:
    """The best-scoring detection whose box holds ``point`` (x, y), or None."""
    x, y = point
    hits = [d for d in detections if d[0][0] <= x <= d[0][0] + d[0][2] and d[0][1] <= y <= d[0][1] + d[0][3]]
    return max(hits, key=lambda d: d[1]) if hits else None


# YuNet's eye landmarks report only about a third of a head's roll (8 degrees for a 30-degree
# tilt, training/evaluate_pose), so a tilted face is looked at again turned by each of these
# angles towards upright (``refine_landmarks``).
REFINE_ANGLES = (15.0, 30.0, 45.0)


def _turn_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return np.hstack([points, np.ones((len(points), 1))]) @ matrix.T


def refine_landmarks(gray: np.ndarray, box: Sequence[int], landmarks: np.ndarray | None) -> np.ndarray | None:
    """Landmarks that see the whole tilt of a tilted face.

    A face whose eyes tilt ``ALIGN_MIN_DEGREES`` or more is cut out with room around it, turned
    by each of ``REFINE_ANGLES`` in the direction that levels it and detected again; the view in
    which its eyes look most level wins, and that view's landmarks, turned back into the image,
    replace the first ones (the detector is accurate on near-upright faces). Faces that already
    look upright, or that no view finds again, keep their landmarks: the cost is one small
    detection per angle for tilted faces only."""
    if landmarks is None:
        return None
    if isinstance(landmarks, TurnedLandmarks):  # seen near upright already: nothing to refine
        return np.asarray(landmarks)
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    first = eye_angle(landmarks)
    if abs(first) < ALIGN_MIN_DEGREES:
        return landmarks
    x, y, w, h = (int(v) for v in box)
    side = int(np.ceil(2 * max(w, h)))
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    region = square_region(gray, x0, y0, side)
    # One face fills the view: the detector needs no more than DETECT_MIN_SIDE pixels for it, so a
    # large face (a selfie) is looked at shrunk, which keeps each look at a few milliseconds.
    scale = min(1.0, DETECT_MIN_SIDE / side)
    if scale < 1.0:
        region = cv2.resize(region, (DETECT_MIN_SIDE, DETECT_MIN_SIDE), interpolation=cv2.INTER_AREA)
    size = region.shape[0]
    centre = (size / 2 - 0.5, size / 2 - 0.5)
    best, best_residual = landmarks, abs(first)
    for turn in REFINE_ANGLES:
        matrix = cv2.getRotationMatrix2D(centre, float(np.sign(first) * turn), 1.0)
        view = cv2.warpAffine(region, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        hit = detection_at(detect_with_landmarks(view), centre)
        if hit is None:
            continue
        seen = hit[2]
        residual = abs(eye_angle(seen))
        if residual < best_residual:
            back = cv2.invertAffineTransform(matrix)
            best, best_residual = _turn_points(seen, back) / scale + [x0, y0], residual
    return best


def face_crops(gray: np.ndarray, detections: Sequence[tuple[Box, float, np.ndarray | None]]) -> list[np.ndarray]:
    """48x48 crops of detections, eyes levelled (``preprocessing.align_face``, with the
    landmarks of ``refine_landmarks`` unless ``FACE_ALIGN_REFINE`` is off) unless the
    ``FACE_ALIGN`` setting is off. Photos, live frames and video samples all crop here."""
    return tracked_face_crops(gray, detections, None)[1]


def tracked_face_crops(
    gray: np.ndarray, detections: Sequence[tuple[Box, float, np.ndarray | None]], tracks: FaceTracks | None
) -> tuple[list[int], list[np.ndarray]]:
    """(track ids, crops) of one frame's detections. With ``tracks`` (a live session's or a
    video's), each face joins its track and a tilted face's refined landmarks are remembered by
    the track while its tilt holds (``tracking.AlignmentMemory``); without, every tilted face is
    refined (photos) and the ids are all 0."""
    if tracks is None:
        ids = [0] * len(detections)
    else:
        ids = tracks.assign([list(box) for box, _, _ in detections], [getattr(lm, "turn", None) for _, _, lm in detections])
    if not config.get().face_align:
        return ids, [align_face(gray, tuple(box), None) for box, _, _ in detections]
    refine = config.get().face_align_refine
    crops = []
    for track, (box, _, landmarks) in zip(ids, detections, strict=True):
        if not refine:
            points = landmarks
        elif tracks is None:
            points = refine_landmarks(gray, box, landmarks)
        else:
            points = tracks.memory.landmarks(track, tracks.frame - 1, gray, box, landmarks, refine_landmarks)
        crops.append(align_face(gray, tuple(box), points))
    return ids, crops


def live_model_name() -> str | None:
    """The model for live webcam frames: ``registry.json``'s ``face_live`` when it names one (a
    single network, when the served ``face`` model is an ensemble too slow for a webcam's frame
    rate), else None: the served face model. Each reply's ``model`` says which served it."""
    try:
        return registry.served_name("face_live")
    except registry.ModelUnavailable:
        return None


def classify_faces(
    gray_crops: Sequence[np.ndarray] | np.ndarray, *, model: str | None = None
) -> np.ndarray:
    """48x48 grey uint8 face crops -> (N, classes) calibrated probabilities, one model call."""
    loaded = registry.get_model(model, task="face")
    if len(gray_crops) == 0:
        return np.zeros((0, len(loaded.classes)), dtype=np.float32)
    return loaded.predict(faces_to_input(np.stack(list(gray_crops))))


def analyze_image(
    image: bytes | np.ndarray, *, model: str | None = None, decode_ms: float = 0.0, tracks: FaceTracks | None = None
) -> dict[str, Any]:
    """Every face in ``image`` (encoded bytes or a BGR/grey array) with box, emotion, probabilities.

    Raises ``InvalidMedia`` for unusable input and ``registry.ModelUnavailable`` when the served
    model or the detector cannot be loaded. Boxes are in the original image's pixels (EXIF
    orientation applied for bytes). ``decode_ms``: what the caller already spent decoding an
    array it passes, counted in the decode stage. ``tracks``: a live session's faces so far
    (``tracking.FaceTracks``), so a tilted face is not refined again on every frame. Every call is measured per stage
    (``config.observe``: the web layer's metrics): uploads, the API, workers and live frames.
    """
    started = time.perf_counter()
    if isinstance(image, (bytes, bytearray, memoryview)):
        bgr = decode_image(image)
    else:
        bgr = as_bgr(image)
    decoded = time.perf_counter()
    loaded = registry.get_model(model, task="face")
    loaded_at = (
        time.perf_counter()
    )  # first call only: model loading is not detection time
    detections = detect_in_frame(bgr, tracks)
    if len(detections) > MAX_FACES:
        keep = sorted(detections, key=lambda item: -item[1])[:MAX_FACES]
        detections = sorted(keep, key=_left_to_right)
    detected = time.perf_counter()
    gray = to_gray(bgr)
    _, crops = tracked_face_crops(gray, detections, tracks)
    probabilities = (
        classify_faces(crops, model=loaded.name)
        if crops
        else np.zeros((0, len(loaded.classes)))
    )
    classified = time.perf_counter()
    classes = loaded.classes
    faces = []
    for (box, _, _), row in zip(detections, probabilities, strict=True):
        best = int(np.argmax(row))
        faces.append(
            {
                "box": [int(v) for v in box],
                "too_small": bool(max(box[2], box[3]) < MIN_JUDGE_PX),
                "emotion": classes[best],
                "confidence": float(row[best]),
                "probabilities": {
                    name: float(p) for name, p in zip(classes, row, strict=True)
                },
            }
        )
    timings = {
        "decode_ms": round(decode_ms + (decoded - started) * 1000, 2),
        "detect_ms": round((detected - loaded_at) * 1000, 2),
        "classify_ms": round((classified - detected) * 1000, 2),
    }
    config.get().observe(loaded.name, timings)
    return {
        "width": int(bgr.shape[1]),
        "height": int(bgr.shape[0]),
        "faces": faces,
        "model": loaded.info(),
        "timings": timings,
    }


# Detector input sizes a worker meets most (photos of the usual aspect ratios scaled to
# DETECT_MAX_SIDE, live frames at 640x480): OpenCV sizes the detector's buffers on the first
# detection at each size (+15 ms on this machine) and keeps them, so warm_up visits these.
WARM_DETECT_SIZES = ((960, 720), (720, 960), (960, 540), (540, 960), (960, 960), (960, 640), (640, 960), (640, 480))


def warm_up() -> None:
    """Load the served model and this thread's detector now (workers call it at start-up): the
    detector at each of ``WARM_DETECT_SIZES``, a JPEG decoded, one face classified."""
    blank = np.zeros((DETECT_MIN_SIDE, DETECT_MIN_SIDE, 3), dtype=np.uint8)
    detect_faces(blank)
    for width, height in WARM_DETECT_SIZES:
        detect_faces(np.zeros((height, width, 3), dtype=np.uint8))
    decode_image(cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes())
    classify_faces(np.zeros((1, 48, 48), dtype=np.uint8))
