#!/usr/bin/env python3
"""Build tests/media/fer2013/: the few real FER2013 faces the tests train and evaluate on.

The tests must pass on a fresh clone with no ``../shared/datasets`` beside it, so they read this
small committed copy instead of the full dataset. Deterministic: for each class, the first
``--train`` files by sorted name of ``<source>/train/<class>/`` and the first ``--test`` of
``<source>/test/<class>/``, copied byte for byte (the tests compare training and serving input
on these exact JPEG bytes). A test that takes the first N faces of a class gets the same N faces
from the fixture as from the full dataset.

    python scripts/make_fer_fixture.py [--source ../shared/datasets/fer2013] [--train 12] [--test 4]

Rerun it only to change the counts; the folder is rebuilt from scratch.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # FACE_EMOTIONS


def build(source: Path, out: Path, counts: dict[str, int]) -> list[Path]:
    for split, n in counts.items():
        for name in CLASSES:
            if len(sorted((source / split / name).glob("*.jpg"))) < n:
                raise SystemExit(f"{source / split / name}: fewer than {n} .jpg files")
    for split in counts:
        shutil.rmtree(out / split, ignore_errors=True)
    copied = []
    for split, n in counts.items():
        for name in CLASSES:
            (out / split / name).mkdir(parents=True)
            for path in sorted((source / split / name).glob("*.jpg"))[:n]:
                copied.append(Path(shutil.copyfile(path, out / split / name / path.name)))
    return copied


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "datasets" / "fer2013")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "media" / "fer2013")
    parser.add_argument("--train", type=int, default=12, help="faces per class from train/ (Training_*)")
    parser.add_argument("--test", type=int, default=4, help="faces per class from test/ (PublicTest_*)")
    args = parser.parse_args(argv)
    copied = build(args.source, args.out, {"train": args.train, "test": args.test})
    size = sum(p.stat().st_size for p in copied)
    print(f"{len(copied)} faces, {size} bytes in {args.out}")


if __name__ == "__main__":
    main()
