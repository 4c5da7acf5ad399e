"""Face pipeline speed: per-face classification and a whole 640x480 photo, against baselines.

    .venv/bin/python -m benchmarks.bench_face [--model NAME] [--repeats 30]

Prints two tables (median ms over ``--repeats`` timed runs after a warm-up, all in this run on
this machine):

1. classification of 48x48 faces at batch 1, 4 and 16: ``model.predict`` (the classic call),
   ``model(x)`` eager (what ``registry.LoadedModel.predict`` does), a ``tf.function`` graph,
   TFLite (``tf.lite.Interpreter``) when the conversion works, ONNX Runtime when installed;
2. detection + classification of a 640x480 photo with four faces cut from
   tests/media/12_angry_men.jpg (laid out 2x2): the served pipeline (``faces.analyze_image``, all faces in one
   batch) against the classic pipeline (the same YuNet detection, then ``model.predict`` per face;
   and the Haar cascade when this OpenCV still has one).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks._common import median_ms, tflite_runner
from recognition.inference import faces, registry, yunet
from recognition.inference.preprocessing import crop_face, faces_to_input, to_gray

REPO = Path(__file__).resolve().parents[1]
GROUP = REPO / "tests" / "media" / "12_angry_men.jpg"
# Four faces of the film still (x, y, w, h), each cut square with some context and laid out
# 2x2 on a grey 640x480 canvas: a "photo with four faces" that every detector setting agrees on.
GROUP_FACES = (
    (23, 225, 160, 199),
    (281, 211, 111, 152),
    (459, 146, 112, 145),
    (885, 335, 152, 209),
)


def photo_640x480() -> np.ndarray:
    image = cv2.imread(str(GROUP))
    canvas = np.full((480, 640, 3), 128, np.uint8)
    for i, (x, y, w, h) in enumerate(GROUP_FACES):
        side, cx, cy = int(1.4 * max(w, h)), x + w // 2, y + h // 2
        crop = image[
            max(0, cy - side // 2) : cy + side // 2,
            max(0, cx - side // 2) : cx + side // 2,
        ]
        top, left = (i // 2) * 240 + 30, (i % 2) * 320 + 70
        canvas[top : top + 180, left : left + 180] = cv2.resize(
            crop, (180, 180), interpolation=cv2.INTER_AREA
        )
    return canvas


def onnx_runner(keras_model) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str]:
    """ONNX Runtime through Keras' ONNX export (needs tf2onnx, onnx, onnxruntime; not in
    requirements.txt: install them into a throwaway --target folder and put it on PYTHONPATH)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime not installed"
    path = Path(tempfile.mkdtemp()) / "face.onnx"
    try:
        keras_model.predict_on_batch(
            np.zeros((1, 48, 48, 1), np.float32)
        )  # export needs a built graph
        with contextlib.redirect_stdout(io.StringIO()):
            keras_model.export(str(path), format="onnx", verbose=False)
    except Exception as exc:  # noqa: BLE001 - report any conversion failure and go on
        return None, f"export failed: {type(exc).__name__}: {exc}"
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    return (lambda x: session.run(None, {name: x})[0]), f"onnxruntime {ort.__version__}"


def classification_table(loaded: registry.LoadedModel, repeats: int) -> list[str]:
    import tensorflow as tf

    km = loaded.keras_model
    rng = np.random.default_rng(0)
    faces_u8 = rng.integers(0, 256, size=(16, 48, 48), dtype=np.uint8)
    graph = tf.function(lambda x: km(x, training=False), reduce_retracing=True)
    tflite, tflite_note = tflite_runner(km, os.cpu_count())
    onnx, onnx_note = onnx_runner(km)
    methods: list[tuple[str, Callable[[np.ndarray], object] | None]] = [
        ("model.predict (baseline)", lambda x: km.predict(x, verbose=0)),
        ("model(x) eager", lambda x: np.asarray(km(x, training=False))),
        ("model.predict_on_batch", km.predict_on_batch),
        ("registry LoadedModel.predict (served)", loaded.predict),
        ("tf.function graph", lambda x: graph(tf.constant(x)).numpy()),
        (f"TFLite ({tflite_note})", tflite),
        (f"ONNX Runtime ({onnx_note})", onnx),
    ]
    reference = np.asarray(km(faces_to_input(faces_u8[:4]), training=False))
    for i, (name, fn) in enumerate(methods):
        if fn is not None and name.startswith(("TFLite", "ONNX")):
            drift = float(np.abs(fn(faces_to_input(faces_u8[:4])) - reference).max())
            methods[i] = (f"{name[:-1]}, max |diff| {drift:.1e})", fn)
    lines = [
        "| classification | batch 1: ms/face | batch 4: ms/face | batch 16: ms/face | speed-up vs predict (batch 1) |",
        "|---|---|---|---|---|",
    ]
    base = None
    for name, fn in methods:
        if fn is None:
            lines.append(f"| {name} | n/a | n/a | n/a | n/a |")
            continue
        per_face = []
        for batch in (1, 4, 16):
            x = faces_to_input(faces_u8[:batch])
            per_face.append(median_ms(lambda fn=fn, x=x: fn(x), repeats) / batch)
        base = base or per_face[0]
        lines.append(
            f"| {name} | {per_face[0]:.2f} | {per_face[1]:.2f} | {per_face[2]:.2f} | {base / per_face[0]:.1f}x |"
        )
    return lines


def alignment_table(repeats: int) -> list[str]:
    """The crop step alone for the four faces of the 640x480 photo, upright and turned 20 and 30
    degrees: ``crop_face`` (the box) against ``align_face`` (eyes levelled from YuNet's first
    landmarks) and the served ``faces.face_crops`` (landmarks refined by ``refine_landmarks``)."""
    from recognition.inference.preprocessing import align_face

    lines = ["| crop step, 4 faces | crop_face (ms) | align_face, first landmarks (ms) | served face_crops, refined (ms) | extra per face, served (ms) |",
             "|---|---|---|---|---|"]
    for label, angle in (("upright (within 5 degrees: align_face crops as crop_face does)", 0), ("turned 20 degrees", 20), ("turned 30 degrees", 30)):
        photo = photo_640x480()
        if angle:
            photo = cv2.warpAffine(photo, cv2.getRotationMatrix2D((320, 240), angle, 1.0), (640, 480), borderMode=cv2.BORDER_REPLICATE)
        gray = to_gray(photo)
        found = faces.detect_with_landmarks(photo)
        plain = median_ms(lambda gray=gray, found=found: [crop_face(gray, tuple(b)) for b, _, _ in found], repeats)
        aligned = median_ms(lambda gray=gray, found=found: [align_face(gray, tuple(b), lm) for b, _, lm in found], repeats)
        served = median_ms(lambda gray=gray, found=found: faces.face_crops(gray, found), repeats)
        lines.append(f"| {label}, {len(found)} found | {plain:.3f} | {aligned:.3f} | {served:.3f} | {(served - plain) / max(1, len(found)):.3f} |")
    return lines


def pipeline_table(loaded: registry.LoadedModel, repeats: int) -> list[str]:
    km = single(loaded).keras_model
    photo = photo_640x480()
    jpeg = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    n_faces = len(faces.detect_faces(photo))

    def classic_yunet() -> list:
        gray = to_gray(photo)
        return [
            km.predict(faces_to_input(crop_face(gray, tuple(b))), verbose=0)
            for b in faces.detect_faces(photo)
        ]

    rows = [
        (
            f"served ({loaded.name}): analyze_image(array), one batch",
            lambda: faces.analyze_image(photo, model=loaded.name),
        ),
        (
            "served: analyze_image(JPEG bytes), with decoding",
            lambda: faces.analyze_image(jpeg, model=loaded.name),
        ),
        ("detection only (YuNet)", lambda: faces.detect_faces(photo)),
        ("classic: YuNet + model.predict per face (baseline)", classic_yunet),
    ]
    if hasattr(cv2, "CascadeClassifier") and hasattr(cv2, "data"):
        cascade = cv2.CascadeClassifier(
            cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        )

        def classic_haar() -> list:
            gray = to_gray(photo)
            boxes = cascade.detectMultiScale(gray, 1.3, 5)
            return [
                km.predict(faces_to_input(crop_face(gray, tuple(b))), verbose=0)
                for b in boxes
            ]

        rows.append(("classic: Haar + model.predict per face", classic_haar))
    if single(loaded) is not loaded:  # an ensemble: its first member alone, same pipeline
        member = single(loaded)
        rows.append((f"one member alone ({member.name}): analyze_image(array)", lambda: faces.analyze_image(photo, model=member.name)))
    timings = [(name, median_ms(fn, repeats)) for name, fn in rows]
    base = timings[3][1]
    lines = [
        f"| 640x480 photo, {n_faces} faces found | ms | vs classic YuNet baseline |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {ms:.1f} | {base / ms:.2f}x |" for name, ms in timings]
    if not (hasattr(cv2, "CascadeClassifier") and hasattr(cv2, "data")):
        lines.append(
            f"| classic: Haar + model.predict per face | n/a: OpenCV {cv2.__version__} has no Haar cascade (see compare_detectors.py) | |"
        )
    return lines


def turns_table(repeats: int) -> list[str]:
    """What the turned detector views (faces.DETECT_TURNS) cost: a photo pays for all of them;
    a live session (tracked frames) pays for them one frame in ``tracking.TURN_EVERY`` while its
    faces are upright, and every frame for a view that keeps finding a tilted face."""
    from recognition.inference import tracking

    photo = photo_640x480()
    tilted = cv2.warpAffine(photo, cv2.getRotationMatrix2D((320, 240), 45, 1.0), (640, 480), borderMode=cv2.BORDER_REPLICATE)
    lines = [
        f"| detection, 640x480 (views: upright + {', '.join(f'{t:+g}' for t in faces.DETECT_TURNS)}) | upright view only, ms | as served, ms | extra ms |",
        "|---|---|---|---|",
    ]
    for label, image in (("photo, 4 upright faces", photo), ("photo, the 4 faces turned 45 degrees", tilted)):
        upright = median_ms(lambda image=image: faces.detect_with_landmarks(image), repeats)
        served = median_ms(lambda image=image: faces.detect_in_frame(image, None), repeats)
        found = (len(faces.detect_with_landmarks(image)), len(faces.detect_in_frame(image, None)))
        lines.append(f"| {label} (found {found[0]} / {found[1]}) | {upright:.1f} | {served:.1f} | {served - upright:+.1f} |")
    for label, image in (("live frame, 4 upright faces (mean over 30 tracked frames)", photo), ("live frame, 4 faces turned 45 degrees (mean over 30 tracked frames)", tilted)):
        upright = median_ms(lambda image=image: faces.detect_with_landmarks(image), repeats)
        tracks = tracking.FaceTracks()
        faces.detect_in_frame(image, tracks)
        t0 = time.perf_counter()
        for _ in range(30):
            detections = faces.detect_in_frame(image, tracks)
            tracks.assign([b for b, _, _ in detections], [getattr(lm, "turn", None) for _, _, lm in detections])
        served = (time.perf_counter() - t0) * 1000 / 30
        lines.append(f"| {label} | {upright:.1f} | {served:.1f} | {served - upright:+.1f} |")
    return lines


def detector_table(repeats: int) -> list[str]:
    """YuNet run by OpenCV's DNN module (cv2.FaceDetectorYN) and by ONNX Runtime
    (inference/yunet.py, what serves), one thread each, same images: ms per pass and the rows."""
    group = cv2.imread(str(Path(__file__).resolve().parents[1] / "tests" / "media" / "12_angry_men.jpg"))
    images = {"640x480 photo, 4 faces": photo_640x480(), "960x540 group photo, 10 faces": cv2.resize(group, (960, 540), interpolation=cv2.INTER_AREA)}
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    lines = ["| image | OpenCV DNN, ms | ONNX Runtime, ms | ratio | faces (OpenCV / ONNX Runtime) | largest difference |", "|---|---|---|---|---|---|"]
    try:
        net = yunet.get(faces.detector_path(), 1)
        for label, image in images.items():
            h, w = image.shape[:2]
            cv = cv2.FaceDetectorYN.create(str(faces.detector_path()), "", (w, h), faces.SCORE_THRESHOLD, faces.NMS_THRESHOLD, faces.TOP_K)
            opencv_ms = median_ms(lambda cv=cv, image=image: cv.detect(image), repeats)
            onnx_ms = median_ms(lambda image=image: net.detect(image, faces.SCORE_THRESHOLD, faces.NMS_THRESHOLD, faces.TOP_K), repeats)
            a = cv.detect(image)[1]
            a = np.empty((0, 15), np.float32) if a is None else a
            b = net.detect(image, faces.SCORE_THRESHOLD, faces.NMS_THRESHOLD, faces.TOP_K)
            diff = f"{np.abs(np.sort(a, 0) - np.sort(b, 0)).max():.1e}" if a.shape == b.shape and len(a) else "-"
            lines.append(f"| {label} | {opencv_ms:.1f} | {onnx_ms:.1f} | {opencv_ms / onnx_ms:.2f}x | {len(a)} / {len(b)} | {diff} |")
    finally:
        cv2.setNumThreads(threads)
    return lines


def single(loaded):
    """The model itself, or an ensemble's first member (the per-model rows need one network)."""
    return loaded.members[0] if hasattr(loaded, "members") else loaded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        default=None,
        help="model name in models/ (default: the served face model)",
    )
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")

    loaded = registry.get_model(args.model, task="face")
    load = os.getloadavg()[0]
    members = getattr(loaded, "members", [loaded])
    print(
        f"model {loaded.name} {loaded.version} ({', '.join(m.name for m in members)}; "
        f"{sum(m.keras_model.count_params() for m in members):,} parameters"
        f"{'; test-time views: ' + '+'.join(loaded.tta) if getattr(loaded, 'tta', None) else ''}); "
        f"{os.cpu_count()} CPUs, load average {load:.1f}; median of {args.repeats} runs"
    )
    print("\n".join(classification_table(single(loaded), args.repeats)))
    if single(loaded) is not loaded:
        print(f"(per-face rows: {single(loaded).name} alone; the ensemble's registry call:)")
        x4 = faces_to_input(np.zeros((4, 48, 48), np.uint8))
        print(f"| ensemble {loaded.name}.predict, batch 4 | {median_ms(lambda: loaded.predict(x4), args.repeats) / 4:.2f} ms per face |")
    print()
    print("\n".join(pipeline_table(loaded, args.repeats)))
    print()
    print("\n".join(alignment_table(args.repeats)))
    print()
    print("\n".join(turns_table(args.repeats)))
    print()
    print("\n".join(detector_table(args.repeats)))


if __name__ == "__main__":
    main(sys.argv[1:])
