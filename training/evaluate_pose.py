"""Faces as people photograph them: tilted heads and small faces, through the whole pipeline.

    python -m training.evaluate_pose --data ../shared/datasets/fer2013/test [--n 700] [--model NAME]

Each FER2013 face is enlarged to ``--face-px`` (default 120) and placed in a 640x480 frame
(on a plain background of the face's mean grey), rotated about its centre by
each ``--angles`` value; then the site's own steps run on the frame: YuNet detection, the crop
(with eye alignment from YuNet's landmarks, and without: ``crop_face`` of the box), the served
model. A second table shrinks upright faces to each ``--sizes`` value. Printed as markdown tables
with, per row: detection rate (the best-scoring detection whose box holds the face centre),
accuracy over detected faces, and accuracy over all faces (a missed face counts as wrong).
Choices (the alignment threshold, the smallest size served) are made with ``--data`` pointing at
training faces (``--split val``: the trainers' validation split); PublicTest is then reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

FRAME_W, FRAME_H = 640, 480


def place(face: np.ndarray, size: int, angle: float) -> tuple[np.ndarray, tuple[float, float]]:
    """A 48x48 grey face enlarged to ``size`` px, centred in a 640x480 BGR frame of the face's
    mean grey, rotated ``angle`` degrees (counter-clockwise on screen) about its centre."""
    big = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC if size > face.shape[0] else cv2.INTER_AREA)
    fill = int(face.mean())
    frame = np.full((FRAME_H, FRAME_W), fill, np.uint8)
    top, left = (FRAME_H - size) // 2, (FRAME_W - size) // 2
    centre = (left + size / 2 - 0.5, top + size / 2 - 0.5)
    if angle:
        pad = int(size * 0.21)  # room for the corners of the rotated square
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
        big = cv2.warpAffine(big, cv2.getRotationMatrix2D((big.shape[1] / 2 - 0.5, big.shape[0] / 2 - 0.5), angle, 1.0), (big.shape[1], big.shape[0]),
                             flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
        top, left = top - pad, left - pad
    frame[top : top + big.shape[0], left : left + big.shape[1]] = big
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), centre


def pipeline_crops(frames: list[tuple[np.ndarray, tuple[float, float]]], refine: bool = True, turns: tuple[float, ...] = ()) -> tuple[list[np.ndarray | None], list[np.ndarray | None], list[float | None], list[np.ndarray | None]]:
    """(aligned crop, plain crop, eye angle, crop aligned with refined landmarks) of the face at
    each frame's centre; None if missed. ``turns``: the detector's extra turned views
    (``faces.detect_with_landmarks``)."""
    from recognition.inference import faces
    from recognition.inference.preprocessing import (
        align_face,
        crop_face,
        eye_angle,
        to_gray,
    )

    aligned, plain, angles, refined = [], [], [], []
    for bgr, (cx, cy) in frames:
        hit = faces.detection_at(faces.detect_with_landmarks(bgr, turns=turns), (cx, cy))
        if hit is None:
            aligned.append(None), plain.append(None), angles.append(None), refined.append(None)
            continue
        box, _, landmarks = hit
        gray = to_gray(bgr)
        aligned.append(align_face(gray, tuple(box), landmarks))
        plain.append(crop_face(gray, tuple(box)))
        angles.append(eye_angle(landmarks))
        refined.append(align_face(gray, tuple(box), faces.refine_landmarks(gray, box, landmarks)) if refine else None)
    return aligned, plain, angles, refined


def score(crops: list[np.ndarray | None], y: np.ndarray, model) -> dict:
    from recognition.inference.preprocessing import faces_to_input

    found = np.asarray([c is not None for c in crops])
    if not found.any():
        return {"detected": 0.0, "accuracy": None, "accuracy_all": 0.0}
    x = faces_to_input(np.stack([c for c in crops if c is not None]))
    pred = np.concatenate([model.predict(x[i : i + 256]) for i in range(0, len(x), 256)]).argmax(1)
    correct = pred == y[found]
    return {"detected": round(float(found.mean()), 4), "accuracy": round(float(correct.mean()), 4), "accuracy_all": round(float(correct.sum() / len(y)), 4)}


def load(data: Path, split: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from training import data as datasets

    x, y = datasets.load_face_arrays(data)
    if split == "val":
        _, idx = datasets.stratified_split(y, 0.1, 1337)
        x, y = x[idx], y[idx]
    if n and n < len(y):
        pick = np.sort(np.random.default_rng(seed).choice(len(y), n, replace=False))
        x, y = x[pick], y[pick]
    return x, y


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="FER2013 folder (<class>/*.jpg) or .npz")
    parser.add_argument("--split", choices=("all", "val"), default="all", help="val: only the trainers' validation split of --data (a train folder)")
    parser.add_argument("--n", type=int, default=700, help="faces sampled (seeded); 0 = all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="model name (default: the served face model)")
    parser.add_argument("--face-px", type=int, default=120)
    parser.add_argument("--angles", type=float, nargs="*", default=[0, 15, -15, 30, -30, 45, -45, 60, -60, 90])
    parser.add_argument("--sizes", type=int, nargs="*", default=[96, 64, 48, 32, 24, 16])
    parser.add_argument("--save-crops", type=Path, default=None, help="keep each angle's served crops (and which faces were found) in this .npz")
    parser.add_argument("--from-crops", type=Path, default=None,
                        help="score the crops a --save-crops run kept (same --data, --n, --seed, --angles) instead of detecting again: another model, same faces")
    parser.add_argument("--turns", type=float, nargs="*", default=None,
                        help="the detector's extra turned views (default: faces.DETECT_TURNS, what photos get; give none for the upright view alone)")
    args = parser.parse_args(argv)
    from recognition.inference import faces, registry

    turns = tuple(faces.DETECT_TURNS if args.turns is None else args.turns)
    started = time.time()
    x, y = load(args.data, args.split, args.n, args.seed)
    model = registry.get_model(args.model, task="face")
    result = {"model": model.info(), "n": len(y), "data": str(args.data), "split": args.split, "angles": [], "sizes": []}
    result["turns"] = list(turns)
    print(f"model {model.name} {model.version}; {len(y)} faces from {args.data} ({args.split}); faces {args.face_px} px in 640x480 frames; detector views: upright{''.join(f', {t:+g}' for t in turns)}\n")
    print("| rotation | detected | accuracy, refined alignment (served) | accuracy, aligned from first landmarks | accuracy, not aligned | refined, all faces | not aligned, all faces | median eye angle found |")
    print("|---|---|---|---|---|---|---|---|")
    saved = dict(np.load(args.from_crops)) if args.from_crops else None
    keep: dict[str, np.ndarray] = {}
    for angle in args.angles:
        if saved is not None:
            found, stack = saved[f"found_{angle:g}"], saved[f"crops_{angle:g}"]
            crops = iter(stack)
            refined = [next(crops) if f else None for f in found]
            r = score(refined, y, model)
            result["angles"].append({"angle": angle, "refined": r})
            print(f"| {angle:+.0f} deg | {r['detected']:.3f} | {r['accuracy']} | (from {args.from_crops.name}) | | {r['accuracy_all']} | | |", flush=True)
            continue
        aligned, plain, angles, refined = pipeline_crops([place(face, args.face_px, angle) for face in x], turns=turns)
        keep[f"found_{angle:g}"] = np.asarray([c is not None for c in refined])
        keep[f"crops_{angle:g}"] = np.stack([c for c in refined if c is not None]) if any(c is not None for c in refined) else np.zeros((0, 48, 48), np.uint8)
        a, p, r = score(aligned, y, model), score(plain, y, model), score(refined, y, model)
        found = [v for v in angles if v is not None]
        median = float(np.median(found)) if found else float("nan")
        result["angles"].append({"angle": angle, "refined": r, "aligned": a, "not_aligned": p, "median_eye_angle": round(median, 1)})
        print(f"| {angle:+.0f} deg | {a['detected']:.3f} | {r['accuracy']} | {a['accuracy']} | {p['accuracy']} | {r['accuracy_all']} | {p['accuracy_all']} | {median:+.1f} |", flush=True)
    if args.save_crops and keep:
        np.savez_compressed(args.save_crops, **keep)
    print("\n| face size (px) | detected | accuracy (detected) | accuracy, all faces |")
    print("|---|---|---|---|")
    for size in args.sizes:
        _, _, _, aligned = pipeline_crops([place(face, size, 0) for face in x], turns=turns)
        a = score(aligned, y, model)
        result["sizes"].append({"size": size, **a})
        print(f"| {size} | {a['detected']:.3f} | {a['accuracy']} | {a['accuracy_all']} |", flush=True)
    result["seconds"] = round(time.time() - started, 1)
    print(json.dumps(result), file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
