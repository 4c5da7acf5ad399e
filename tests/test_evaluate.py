"""``python -m training.evaluate``: one JSON object on stdout, numbers that agree with the
serving code, clear errors for bad folders and models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognition.inference import faces, registry
from recognition.inference.labels import FACE_EMOTIONS
from tests.conftest import FER2013
from training import data as datasets
from training.evaluate import evaluate_face

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(__file__).parent / "media"


@pytest.fixture(scope="module")
def tiny_fer_folder(tmp_path_factory) -> Path:
    """Two FER2013 PublicTest faces per class copied into <class>/ folders."""
    folder = tmp_path_factory.mktemp("fer_tiny")
    for name in FACE_EMOTIONS:
        (folder / name).mkdir()
        for path in sorted((FER2013 / "test" / name).glob("*.jpg"))[:2]:
            shutil.copy(path, folder / name / path.name)
    return folder


def run_evaluate(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop(
        "DJANGO_SETTINGS_MODULE", None
    )  # a plain command line, no Django project needed
    return subprocess.run(
        [sys.executable, "-m", "training.evaluate", *args],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_evaluate_face_prints_one_json_object_matching_serving(
    tiny_fer_folder, tiny_face_models, settings
):
    proc = run_evaluate(
        "face",
        "--data",
        str(tiny_fer_folder),
        "--models-dir",
        str(tiny_face_models),
        "--no-cache",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert {
        "accuracy",
        "n",
        "per_class_recall",
        "confusion",
        "model",
        "seconds",
        "ece",
    } <= set(result)
    assert result["n"] == 14 and result["model"] == {
        "name": "face_tiny",
        "version": "0.test",
    }
    confusion = np.asarray(result["confusion"])
    assert confusion.shape == (7, 7) and list(confusion.sum(axis=1)) == [2] * 7
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / 14)
    assert list(result["per_class_recall"]) == list(FACE_EMOTIONS)

    # the same faces through the site's classify_faces give the same confusion matrix
    settings.MODELS_DIR = tiny_face_models
    registry.clear_cache()
    x, y, _ = datasets.load_face_folder(tiny_fer_folder)
    predicted = faces.classify_faces(list(x)).argmax(axis=1)
    expected = np.zeros((7, 7), dtype=int)
    np.add.at(expected, (y, predicted), 1)
    assert np.array_equal(confusion, expected)


def test_evaluate_face_reads_npz_like_the_folder(
    tmp_path, tiny_fer_folder, tiny_face_models
):
    x, y, _ = datasets.load_face_folder(tiny_fer_folder)
    np.savez(tmp_path / "faces.npz", x=x, y=y)
    from_folder = evaluate_face(
        tiny_fer_folder, directory=tiny_face_models, cache=False
    )
    from_npz = evaluate_face(tmp_path / "faces.npz", directory=tiny_face_models)
    for key in ("accuracy", "n", "confusion", "per_class_recall"):
        assert from_folder[key] == from_npz[key]


def test_evaluate_refuses_bad_input_with_clear_errors(tmp_path, tiny_face_models):
    proc = run_evaluate(
        "face",
        "--data",
        str(tmp_path / "nowhere"),
        "--models-dir",
        str(tiny_face_models),
    )
    assert (
        proc.returncode == 2 and "does not exist" in proc.stderr and proc.stdout == ""
    )

    (tmp_path / "bored").mkdir()  # not one of the seven classes
    cv2.imwrite(str(tmp_path / "bored" / "a.png"), np.zeros((48, 48), np.uint8))
    with pytest.raises(ValueError, match="unknown class folders"):
        evaluate_face(tmp_path, directory=tiny_face_models, cache=False)

    proc = run_evaluate(
        "face",
        "--data",
        str(MEDIA / "fer"),
        "--models-dir",
        str(tiny_face_models),
        "--model",
        "face_nope",
        "--no-cache",
    )
    assert (
        proc.returncode == 2
        and "face_nope.json is missing" in proc.stderr
        and proc.stdout == ""
    )


@pytest.mark.skipif(
    not (REPO / "models" / "registry.json").exists(),
    reason="the face model is not shipped yet",
)
def test_evaluate_defaults_to_the_served_model():
    registry.clear_cache()
    result = evaluate_face(MEDIA / "fer", directory=REPO / "models", cache=False)
    assert result["model"]["name"] == registry.served_name("face", REPO / "models")
    assert result["n"] == 6


def test_evaluate_face_through_the_detector(tiny_fer_folder, tiny_face_models):
    result = evaluate_face(tiny_fer_folder, directory=tiny_face_models, cache=False, detect=True)
    assert result["detected"] >= 12 / 14  # YuNet finds almost every FER face (upscaled)
    assert result["n"] == round(result["detected"] * 14)
    assert result["accuracy_all"] == pytest.approx(result["accuracy"] * result["n"] / 14)
