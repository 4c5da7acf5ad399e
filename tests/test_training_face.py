"""Face training: the same model input in training and serving, a tiny real training run that
writes a model and its card, and resuming from the run's checkpoint at the right epoch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognition.inference import registry
from recognition.inference.images import decode_image
from recognition.inference.labels import FACE_EMOTIONS
from recognition.inference.preprocessing import crop_face, faces_to_input, to_gray
from tests.conftest import FER2013
from training import data as datasets


def copy_fer(
    destination: Path, split: str, per_class: int, offset: int = 0
) -> list[Path]:
    """A few FER2013 images per class into destination/<class>/, from the committed fixture
    tests/media/fer2013 (the first files by sorted name of each class of the full dataset)."""
    copied = []
    for name in FACE_EMOTIONS:
        (destination / name).mkdir(parents=True, exist_ok=True)
        chosen = sorted((FER2013 / split / name).glob("*.jpg"))[offset : offset + per_class]
        assert len(chosen) == per_class, (
            f"{FER2013 / split / name} holds too few faces: rebuild it with scripts/make_fer_fixture.py"
        )
        for path in chosen:
            copied.append(Path(shutil.copy(path, destination / name / path.name)))
    return copied


def serving_input(paths: list[Path]) -> np.ndarray:
    """What the site feeds the model for an uploaded 48x48 face: decode, grey, crop, normalise."""
    crops = []
    for path in paths:
        gray = to_gray(decode_image(path.read_bytes()))
        crops.append(crop_face(gray, (0, 0, gray.shape[1], gray.shape[0])))
    return faces_to_input(np.stack(crops))


def test_training_and_serving_build_identical_model_input(tmp_path):
    folder = tmp_path / "jpeg"
    copy_fer(folder, "train", 3)
    png = tmp_path / "png"  # the same faces as PNG
    for path in folder.glob("*/*.jpg"):
        (png / path.parent.name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(png / path.parent.name / (path.stem + ".png")),
            cv2.imread(str(path), cv2.IMREAD_UNCHANGED),
        )

    for source in (folder, png):
        x, y, names = datasets.load_face_folder(source)
        assert len(names) == 21 and list(np.bincount(y)) == [3] * 7
        training = faces_to_input(x)
        serving = serving_input([source / n for n in names])
        assert (
            training.shape == serving.shape == (21, 48, 48, 1)
            and training.dtype == np.float32
        )
        assert np.array_equal(training, serving)

    # the GPU runs read a bundle of the original JPEG bytes: same pixels again
    bundle = tmp_path / "faces.npz"
    assert datasets.pack_face_folder(folder, bundle) == 21
    x_bundle, y_bundle = datasets.load_face_arrays(bundle)
    x_folder, y_folder, _ = datasets.load_face_folder(folder)
    assert np.array_equal(x_bundle, x_folder) and np.array_equal(y_bundle, y_folder)


def test_faces_to_input_is_the_documented_scaling():
    faces = np.arange(2 * 48 * 48, dtype=np.int64).reshape(2, 48, 48) % 256
    x = faces_to_input(faces.astype(np.uint8))
    assert x.shape == (2, 48, 48, 1)
    assert np.array_equal(x[..., 0], faces.astype(np.float32) / 255.0)
    assert np.array_equal(faces_to_input(faces[0].astype(np.uint8)), x[:1])


@pytest.fixture
def tiny_fer_npz(tmp_path) -> tuple[Path, Path]:
    """FER2013 train (10 per class) and test (3 per class) faces as .npz, like the GPU bundles."""
    paths = {}
    for split, per_class in (("train", 10), ("test", 3)):
        copy_fer(tmp_path / split, split, per_class)
        x, y, _ = datasets.load_face_folder(tmp_path / split)
        paths[split] = tmp_path / f"{split}.npz"
        np.savez(paths[split], x=x, y=y)
    return paths["train"], paths["test"]


@pytest.mark.slow
def test_tiny_training_run_writes_model_and_card_and_resumes(tmp_path, tiny_fer_npz):
    from training import train_face_cnn

    train_npz, test_npz = tiny_fer_npz
    out, runs = tmp_path / "models", tmp_path / "runs"
    common = [
        "--data",
        str(train_npz),
        "--test",
        str(test_npz),
        "--limit",
        "64",
        "--width",
        "0.125",
    ]
    common += ["--batch-size", "32", "--out", str(out), "--runs", str(runs)]

    train_face_cnn.main([*common, "--epochs", "1"])
    card = json.loads((out / "face_cnn.json").read_text())
    assert (out / "face_cnn.md").read_text().startswith("# Model card: face_cnn")
    assert "**Distillation**" not in (out / "face_cnn.md").read_text()  # taught by the labels alone
    assert card["classes"] == list(FACE_EMOTIONS) and card["file"] == "face_cnn.keras"
    assert card["sha256"] == registry.sha256_file(out / "face_cnn.keras")
    assert card["training"]["epochs"] == 1 and card["metrics"]["test"]["n"] == 21
    state = json.loads((runs / "face_cnn" / "state.json").read_text())
    assert state["epoch"] == 1 and (runs / "face_cnn" / "last.keras").exists()

    train_face_cnn.main([*common, "--epochs", "2", "--resume"])
    log = (runs / "face_cnn" / "train.log").read_text()
    assert "resumed at epoch 1" in log
    state = json.loads((runs / "face_cnn" / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    card_2 = json.loads((out / "face_cnn.json").read_text())
    assert card_2["training"]["epochs"] == 2
    # the model it replaced had today's version: the new one gets the next, never the same
    assert card_2["version"] == card["version"] + ".2"

    # the written model serves through the registry like the shipped one
    registry.clear_cache()
    loaded = registry.get_model("face_cnn", directory=out)
    x, _ = datasets.load_face_arrays(test_npz)
    p = loaded.predict(faces_to_input(x))
    assert p.shape == (21, 7) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_warm_start_from_a_served_model_records_it_in_the_card(tmp_path, tiny_fer_npz):
    from training import train_face_cnn

    train_npz, test_npz = tiny_fer_npz
    out, runs = tmp_path / "models", tmp_path / "runs"
    common = ["--data", str(train_npz), "--test", str(test_npz), "--limit", "64", "--batch-size", "32"]
    common += ["--out", str(out), "--runs", str(runs), "--threads", "1"]
    train_face_cnn.main([*common, "--width", "0.125", "--epochs", "1", "--name", "first"])
    first = json.loads((out / "first.json").read_text())

    train_face_cnn.main([*common, "--width", "0.125", "--epochs", "1", "--lr", "0", "--name", "second", "--init-weights", str(out / "first.keras")])
    card = json.loads((out / "second.json").read_text())
    warm = card["warm_start"]
    assert warm["sha256"] == first["sha256"] and warm["epochs"] == 1 and warm["version"] == first["version"]
    assert "--init-weights" in card["training"]["command"]
    assert "warm-started from `first.keras`" in (out / "second.md").read_text()
    assert (runs / "second" / "init.keras").exists()
    # learning rate 0: the convolution kernels are still exactly the ones it started from
    import keras

    kernels = [keras.models.load_model(out / f"{n}.keras").layers[1].get_weights()[0] for n in ("first", "second")]
    assert np.array_equal(*kernels)

    # a different width cannot take those weights: a clear error, not a half-trained model
    with pytest.raises(SystemExit, match="do not match"):
        train_face_cnn.main([*common, "--width", "0.25", "--epochs", "1", "--name", "third", "--init-weights", str(out / "first.keras")])
    assert not (out / "third.keras").exists()


@pytest.mark.slow
def test_a_run_continues_on_another_machine_from_the_committed_checkpoint(tmp_path, tiny_fer_npz):
    """What git keeps of a run folder under the default --runs (training/checkpoints/<name>/) is
    enough to --resume it in a fresh clone: the first epoch runs here, the second 'elsewhere' from
    a copy of only the files git would commit."""
    import subprocess

    from training import train_face_vgg

    repo = Path(__file__).resolve().parents[1]
    train_npz, test_npz = tiny_fer_npz
    here, there = tmp_path / "here", tmp_path / "there"
    common = ["--data", str(train_npz), "--test", str(test_npz), "--limit", "64", "--width", "0.125",
              "--batch-size", "32", "--threads", "1", "--erase", "0.5", "--name", "face_vgg"]
    train_face_vgg.main([*common, "--epochs", "1", "--out", str(here / "models"), "--runs", str(here / "runs")])
    run = here / "runs" / "face_vgg"
    files = sorted(p.name for p in run.iterdir())
    assert {"state.json", "last.keras", "best.keras"} <= set(files)
    assert (run / "best.keras").stat().st_size < (run / "last.keras").stat().st_size  # best: weights only

    # Which of these files would git keep under the default checkpoint folder?
    default_dir = "training/checkpoints/face_vgg"
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *[f"{default_dir}/{name}" for name in files]],
                             cwd=repo, capture_output=True, text=True, check=False).stdout.split()
    kept = [name for name in files if f"{default_dir}/{name}" not in ignored]
    assert {"state.json", "last.keras", "best.keras"} <= set(kept)
    (there / "runs" / "face_vgg").mkdir(parents=True)
    for name in kept:
        shutil.copy(run / name, there / "runs" / "face_vgg" / name)

    train_face_vgg.main([*common, "--epochs", "2", "--resume", "--out", str(there / "models"), "--runs", str(there / "runs")])
    state = json.loads((there / "runs" / "face_vgg" / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    assert "resumed at epoch 1" in (there / "runs" / "face_vgg" / "train.log").read_text()
    card = json.loads((there / "models" / "face_vgg.json").read_text())
    assert card["training"]["epochs"] == 2 and "--resume" in card["training"]["command"]


def test_random_erasing_blanks_one_rectangle_per_chosen_face():
    from training.face import augment_faces

    faces = np.full((200, 48, 48), 128, dtype=np.uint8)
    plain = augment_faces(faces, np.random.default_rng(3))
    erased = augment_faces(faces, np.random.default_rng(3), erase=0.5)
    changed = [i for i in range(len(faces)) if not np.array_equal(plain[i], erased[i])]
    assert 70 < len(changed) < 130  # about half
    for i in changed[:20]:
        rows, cols = np.nonzero(plain[i] != erased[i])
        area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert 0.01 * 48 * 48 <= area <= 0.25 * 48 * 48  # one rectangle of 2-20% of the face


def test_training_compiles_without_xla_unless_asked():
    import argparse

    from training.face import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser, name="x", width=0.25, epochs=1, lr=1e-3)
    assert parser.parse_args([]).jit is False and parser.parse_args(["--jit"]).jit is True
    assert parser.parse_args([]).runs == datasets.REPO / "training" / "checkpoints"


def test_augmentation_modes_for_the_ablation_rows():
    from training.face import augment_faces

    faces = np.stack([np.tile(np.arange(48, dtype=np.uint8) * 5, (48, 1))] * 64)  # a left-to-right ramp
    assert np.array_equal(augment_faces(faces, np.random.default_rng(0), mode="none"), faces)
    flipped = augment_faces(faces, np.random.default_rng(0), mode="flip")
    mirrored = [np.array_equal(f, faces[0][:, ::-1]) for f in flipped]
    assert all(m or np.array_equal(f, faces[0]) for m, f in zip(mirrored, flipped)) and 16 < sum(mirrored) < 48
    full = augment_faces(faces, np.random.default_rng(0))
    assert sum(not (np.array_equal(f, faces[0]) or np.array_equal(f, faces[0][:, ::-1])) for f in full) > 60
    with pytest.raises(ValueError):
        augment_faces(faces, np.random.default_rng(0), mode="sideways")


def test_mixup_blends_faces_and_labels_alike():
    from training.face import mixup

    x = np.stack([np.full((48, 48, 1), v, np.float32) for v in (0.0, 1.0)] * 50)
    y = np.eye(7, dtype=np.float32)[[0, 3] * 50]
    xm, ym = mixup(x, y, np.random.default_rng(1), 0.2)
    assert np.allclose(ym.sum(1), 1) and np.all(ym.max(1) >= 0.5)
    # each blended face holds the share of class 3 that its label says (face value = share of the 1.0 face)
    assert np.allclose(xm[:, 0, 0, 0], ym[:, 3], atol=1e-6)


def test_plateau_schedule_halves_after_patience_and_survives_resume():
    from training.face import PlateauSchedule

    s = PlateauSchedule(1e-3, 50, None, warmup=2, patience=3)
    assert s.lr(0) < s.lr(1) < 1e-3 and s.lr(2) == 1e-3
    for loss in (1.0, 0.9, 0.95, 0.93, 0.92):
        s.observe(loss)
    assert s.lr(5) == 5e-4
    resumed = PlateauSchedule(1e-3, 50, None)
    resumed.restore(s.state())
    assert resumed.lr(10) == 5e-4 and resumed.best_loss == 0.9


@pytest.mark.slow
def test_ablation_rows_train_on_a_subset_and_never_read_the_test_split(tmp_path, monkeypatch):
    from training import ablate_face
    from training import data as training_data

    copy_fer(tmp_path / "train", "train", 12)
    read = []
    real_load = training_data.load_face_arrays
    monkeypatch.setattr(training_data, "load_face_arrays", lambda path, *a, **k: read.append(Path(path)) or real_load(path, *a, **k))
    rows = ablate_face.main(["--data", str(tmp_path / "train"), "--rows", "base,sgd,plateau,mixup,flip_only,wider",
                             "--epochs", "2", "--train-fraction", "0.5", "--runs", str(tmp_path / "runs"), "--json", str(tmp_path / "rows.json")])
    assert [r["row"] for r in rows] == ["base", "sgd", "plateau", "mixup", "flip_only", "wider"]
    assert all(r["validation_only"] and r["epochs"] == 2 and 0 <= r["best_val_accuracy"] <= 1 for r in rows)
    # 12 per class, 10% validation (1-2 per class) kept whole; half of the rest trains
    assert all(r["val_size"] == 7 and 32 <= r["train_size"] <= 40 for r in rows)
    assert set(read) == {tmp_path / "train"}  # PublicTest untouched, no model written
    assert not list((tmp_path / "runs").glob("out/*.keras")) and json.loads((tmp_path / "rows.json").read_text())[-1]["row"] == "wider"
    cmd = (tmp_path / "runs" / "ablate_sgd" / "state.json").read_text()
    assert "--optimizer sgd" in cmd and "--lr 0.01" in cmd and "--width 0.125" in cmd
    assert "--width 0.25" in (tmp_path / "runs" / "ablate_wider" / "state.json").read_text()
