"""Compare face detectors on the test photos: faces found, missed, false boxes, ms per image.

    .venv/bin/python -m benchmarks.compare_detectors [--haar-python /tmp/cv4venv/bin/python]

YuNet (``cv2.FaceDetectorYN``, the one ``recognition.inference.faces`` uses) runs at several
detection sizes and score thresholds. The Haar cascade needs OpenCV 4.x (OpenCV 5 dropped
``CascadeClassifier`` and its XML files): it runs in-process when ``cv2`` 4.x is importable,
otherwise in a throwaway interpreter given by ``--haar-python`` (a venv with
``opencv-python-headless<5``), otherwise it is reported as skipped.

Ground truth: the faces below were checked by eye once (boxes in original pixels). A detection
counts as a face when its centre lies in a true box and that box's centre lies in it; "optional"
faces (heavily occluded) count neither as found nor as false.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"
YUNET = REPO / "models" / "face_detection_yunet.onnx"

# Checked by eye on the photos (x, y, w, h in original pixels).
TRUTH: dict[str, dict[str, list[list[int]]]] = {
    "test_image.jpg": {  # 2048x1536: five people standing + one selfie face
        "faces": [
            [312, 345, 99, 125],
            [584, 418, 93, 119],
            [856, 377, 86, 113],
            [859, 854, 425, 587],
            [1203, 398, 83, 111],
            [1537, 381, 96, 110],
        ],
        "optional": [],
    },
    "12_angry_men.jpg": {  # 1280x720 film still, ten clear faces (one half hidden behind a hat)
        "faces": [
            [23, 225, 160, 199],
            [102, 129, 79, 106],
            [281, 211, 111, 152],
            [459, 146, 112, 145],
            [582, 179, 92, 118],
            [726, 161, 92, 115],
            [885, 335, 152, 209],
            [960, 152, 84, 111],
            [1066, 229, 79, 105],
            [1154, 228, 100, 118],
        ],
        "optional": [[372, 192, 52, 75]],  # glasses and forehead behind another head
    },
}


def _centre_in(box: list[int], other: list[int]) -> bool:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return (
        other[0] <= cx <= other[0] + other[2] and other[1] <= cy <= other[1] + other[3]
    )


def _same_face(a: list[int], b: list[int]) -> bool:
    return _centre_in(a, b) and _centre_in(b, a)


def score(name: str, boxes: list[list[int]]) -> dict[str, int]:
    """found / missed / false boxes against the eye-checked truth for photo ``name``."""
    truth, optional = TRUTH[name]["faces"], TRUTH[name]["optional"]
    matched: set[int] = set()
    false = 0
    for box in boxes:
        hit = next(
            (i for i, t in enumerate(truth) if i not in matched and _same_face(box, t)),
            None,
        )
        if hit is not None:
            matched.add(hit)
        elif not any(_same_face(box, t) for t in optional):
            false += 1
    return {"found": len(matched), "missed": len(truth) - len(matched), "false": false}


def scaled(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    if max_side is None or max(image.shape[:2]) <= max_side:
        return image, 1.0
    s = max_side / max(image.shape[:2])
    return cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA), s


def timed(fn, repeats: int) -> tuple[object, float]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return result, statistics.median(times)


def run_yunet(max_side: int | None, threshold: float, repeats: int) -> dict[str, dict]:
    out = {}
    for name in TRUTH:
        image = cv2.imread(str(MEDIA / name))
        small, s = scaled(image, max_side)
        detector = cv2.FaceDetectorYN.create(
            str(YUNET), "", (small.shape[1], small.shape[0]), threshold, 0.3, 500
        )
        rows, ms = timed(lambda d=detector, im=small: d.detect(im)[1], repeats)
        boxes = [
            [int(v / s) for v in row[:4]] for row in (rows if rows is not None else [])
        ]
        out[name] = score(name, boxes) | {"ms": ms, "size": list(small.shape[1::-1])}
    return out


def run_haar(
    max_side: int | None, scale_factor: float, neighbours: int, repeats: int
) -> dict[str, dict]:
    cascade = cv2.CascadeClassifier(
        cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    )
    out = {}
    for name in TRUTH:
        image = cv2.imread(str(MEDIA / name))
        small, s = scaled(image, max_side)

        def detect(im=small):
            gray = cv2.equalizeHist(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY))
            return cascade.detectMultiScale(
                gray,
                scaleFactor=scale_factor,
                minNeighbors=neighbours,
                minSize=(20, 20),
            )

        rects, ms = timed(detect, repeats)
        boxes = [[int(v / s) for v in r] for r in (rects if len(rects) else [])]
        out[name] = score(name, boxes) | {"ms": ms, "size": list(small.shape[1::-1])}
    return out


HAAR_CONFIGS = [(640, 1.3, 5), (640, 1.1, 5), (960, 1.1, 5), (None, 1.1, 5)]
YUNET_CONFIGS = [
    (640, 0.6),
    (960, 0.3),
    (960, 0.6),
    (960, 0.8),
    (1280, 0.6),
    (None, 0.6),
]


def haar_results(repeats: int) -> list[dict]:
    return [
        {
            "detector": f"Haar default, scale {sf}, neighbours {nb}",
            "max_side": side,
            "photos": run_haar(side, sf, nb, repeats),
        }
        for side, sf, nb in HAAR_CONFIGS
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs per image (median reported)"
    )
    parser.add_argument(
        "--haar-python",
        default=None,
        help="a Python with opencv-python-headless<5 for the Haar side",
    )
    parser.add_argument(
        "--haar-only", action="store_true", help=argparse.SUPPRESS
    )  # used by the subprocess
    args = parser.parse_args(argv)

    has_haar = hasattr(cv2, "CascadeClassifier") and hasattr(cv2, "data")
    if args.haar_only:
        print(json.dumps(haar_results(args.repeats)))
        return

    rows: list[dict] = []
    note = ""
    if has_haar:
        rows += haar_results(args.repeats)
    elif args.haar_python:
        proc = subprocess.run(
            [
                args.haar_python,
                "-m",
                "benchmarks.compare_detectors",
                "--haar-only",
                "--repeats",
                str(args.repeats),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        version = subprocess.run(
            [args.haar_python, "-c", "import cv2; print(cv2.__version__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        note = f"Haar rows ran under OpenCV {version} ({args.haar_python})."
        rows += json.loads(proc.stdout.strip().splitlines()[-1])
    else:
        note = (
            f"Haar cascade skipped: OpenCV {cv2.__version__} has no CascadeClassifier. Rerun with "
            "--haar-python pointing at a Python with opencv-python-headless<5."
        )
    rows = [
        {
            "detector": f"YuNet, score >= {thr}",
            "max_side": side,
            "photos": run_yunet(side, thr, args.repeats),
        }
        for side, thr in YUNET_CONFIGS
    ] + rows

    names = list(TRUTH)
    print(
        f"YuNet under OpenCV {cv2.__version__}; median of {args.repeats} runs; truth: "
        + ", ".join(f"{n} {len(TRUTH[n]['faces'])} faces" for n in names)
    )
    if note:
        print(note)
    header = (
        "| detector | detection size | "
        + " | ".join(f"{n}: found / missed / false, ms" for n in names)
        + " |"
    )
    print(header)
    print("|---" * (2 + len(names)) + "|")
    for row in rows:
        cells = []
        for n in names:
            p = row["photos"][n]
            cells.append(
                f"{p['found']} / {p['missed']} / {p['false']}, {p['ms']:.1f} ms ({p['size'][0]}x{p['size'][1]})"
            )
        side = "full size" if row["max_side"] is None else f"max side {row['max_side']}"
        print(f"| {row['detector']} | {side} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
