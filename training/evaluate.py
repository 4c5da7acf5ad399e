"""Evaluate a model on any folder and print ONE JSON object on stdout (logs go to stderr).

    python -m training.evaluate face  --data ../shared/datasets/fer2013/test [--model NAME]
    python -m training.evaluate voice --data ../shared/datasets/ravdess-speech-16k [--model NAME]

face: PATH is a folder of ``<class>/*.jpg|png`` 48x48 face crops (class folders named after the
labels) or an .npz with ``x`` (N, 48, 48) uint8 and ``y``. The images go through the serving code
(``preprocessing.faces_to_input`` and ``registry.LoadedModel.predict``, calibrated), so the
numbers are those of the site. Default model: the one ``models/registry.json`` serves.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 256


def evaluate_face(
    data: Path,
    model_name: str | None = None,
    *,
    directory: Path | None = None,
    cache: bool = True,
    detect: bool = False,
) -> dict[str, Any]:
    """accuracy, n, per_class_recall, confusion, ece, model, seconds for a face folder or .npz.

    ``detect``: send every image through the site's detector and crop first (as an uploaded
    photo would be); the metrics then cover the faces found, ``detected`` is their share and
    ``accuracy_all`` counts images without a face as wrong."""
    from recognition.inference import registry
    from recognition.inference.labels import FACE_EMOTIONS
    from recognition.inference.preprocessing import faces_to_input
    from training import data as datasets
    from training.metrics import summarise

    started = time.time()
    data = Path(data)
    if cache or data.suffix == ".npz":
        x, y = datasets.load_face_arrays(data)
    else:
        x, y, _ = datasets.load_face_folder(data)
    model = registry.get_model(model_name, task="face", directory=directory)
    classes = model.classes
    missing = sorted(set(FACE_EMOTIONS) - set(classes))
    if missing:
        raise ValueError(
            f"model {model.name} has no class for {missing}; its classes are {classes}"
        )
    # Dataset labels index FACE_EMOTIONS; the card's class order may differ.
    y = np.asarray([classes.index(FACE_EMOTIONS[i]) for i in y], dtype=np.int64)
    n_images = len(y)
    if detect:
        x, found = detected_crops(x)
        y = y[found]
    probabilities = np.concatenate(
        [
            model.predict(faces_to_input(x[i : i + BATCH]))
            for i in range(0, len(x), BATCH)
        ]
        or [np.zeros((0, len(classes)), dtype=np.float32)]
    )
    result = summarise(probabilities, y, classes)
    if detect:
        result["detected"] = round(len(y) / n_images, 4)
        result["accuracy_all"] = result["accuracy"] * len(y) / n_images
    return {
        **result,
        "model": model.info(),
        "data": str(data),
        "seconds": round(time.time() - started, 2),
    }


def detected_crops(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """48x48 faces -> (crops of the best detection in each, indices of the faces detected)."""
    from recognition.inference.faces import detect_with_scores
    from recognition.inference.preprocessing import crop_face

    crops, found = [], []
    for i, face in enumerate(faces):
        detections = detect_with_scores(face)
        if detections:
            box = max(detections, key=lambda item: item[1])[0]
            crops.append(crop_face(face, tuple(box)))
            found.append(i)
    empty = np.zeros((0, *faces.shape[1:]), dtype=np.uint8)
    return (np.stack(crops) if crops else empty), np.asarray(found, dtype=np.int64)


def evaluate_voice(data: Path, model_name: str | None = None) -> dict[str, Any]:
    """Delegates to the voice training code, which owns the RAVDESS file naming."""
    from training import voice

    return voice.evaluate_folder(Path(data), model_name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="task", required=True)
    face = sub.add_parser("face", help="face crops: <class>/*.jpg|png folder or .npz")
    face.add_argument(
        "--data",
        type=Path,
        required=True,
        help="folder of <class>/ image folders, or .npz",
    )
    face.add_argument(
        "--model",
        default=None,
        help="model name in models/ (default: the served face model)",
    )
    face.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="where models and cards live (default: MODELS_DIR)",
    )
    face.add_argument(
        "--detect",
        action="store_true",
        help="detect and crop each face first, as the site does with an uploaded photo",
    )
    face.add_argument(
        "--no-cache",
        action="store_true",
        help="do not cache decoded folders under training/cache/",
    )
    voice = sub.add_parser("voice", help="RAVDESS-named audio files under a folder")
    voice.add_argument(
        "--data", type=Path, required=True, help="folder of RAVDESS-named audio files"
    )
    voice.add_argument(
        "--model",
        default=None,
        help="model name in models/ (default: the served voice model)",
    )
    args = parser.parse_args(argv)

    from recognition.inference.registry import ModelUnavailable

    if not args.data.exists():
        parser.error(f"--data {args.data} does not exist")
    try:
        with contextlib.redirect_stdout(sys.stderr):  # logs must not mix with the JSON
            if args.task == "face":
                result = evaluate_face(
                    args.data,
                    args.model,
                    directory=args.models_dir,
                    cache=not args.no_cache,
                    detect=args.detect,
                )
            else:
                result = evaluate_voice(args.data, args.model)
    except (ModelUnavailable, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
