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
) -> dict[str, Any]:
    """accuracy, n, per_class_recall, confusion, ece, model, seconds for a face folder or .npz."""
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
    probabilities = np.concatenate(
        [
            model.predict(faces_to_input(x[i : i + BATCH]))
            for i in range(0, len(x), BATCH)
        ]
    )
    result = summarise(probabilities, y, classes)
    return {
        **result,
        "model": model.info(),
        "data": str(data),
        "seconds": round(time.time() - started, 2),
    }


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
