"""Distillation (training/distill.py): the loss is the documented one, the teacher's labels are
the served model's, and a student trained on them moves towards the teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recognition.inference import registry
from recognition.inference.preprocessing import faces_to_input
from tests.test_training_face import copy_fer, tiny_fer_npz  # noqa: F401 - fixture
from training import data as datasets


def test_the_distillation_loss_is_the_documented_one():
    import keras

    from training.distill import DistillationLoss

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(7), 5).astype(np.float32)  # student outputs
    teacher = rng.dirichlet(np.ones(7), 5)
    hard = np.eye(7)[rng.integers(0, 7, 5)]
    T, w, ls = 2.0, 0.7, 0.1
    soft = teacher ** (1 / T)
    soft /= soft.sum(1, keepdims=True)
    y = np.concatenate([hard, soft], 1).astype(np.float32)
    log_p_t = np.log(p) / T
    log_p_t -= np.log(np.exp(log_p_t).sum(1, keepdims=True))
    expected = w * T * T * -(soft * log_p_t).sum(1) + (1 - w) * -((hard * (1 - ls) + ls / 7) * np.log(p)).sum(1)
    loss = DistillationLoss(7, T, w, ls)
    assert float(loss(keras.ops.convert_to_tensor(y), keras.ops.convert_to_tensor(p))) == pytest.approx(expected.mean(), rel=1e-4)
    # it survives a save/load of a model that names it (a run's last.keras, --resume)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (again.temperature, again.weight, again.label_smoothing) == (T, w, ls)


def test_the_teacher_labels_are_the_served_models_and_are_cached(tmp_path, monkeypatch):
    from training import distill

    monkeypatch.setattr(distill, "CACHE", tmp_path)
    copy_fer(tmp_path / "faces", "train", 2)
    x, _, _ = datasets.load_face_folder(tmp_path / "faces")
    labels = distill.teacher_probabilities("face_vgg", x)
    assert np.allclose(labels, registry.get_model("face_vgg").predict(faces_to_input(x)), atol=1e-6)
    assert len(list(tmp_path.glob("teacher-face_vgg-*.npy"))) == 1
    assert np.array_equal(distill.teacher_probabilities("face_vgg", x), labels)  # from the cache


@pytest.mark.slow
def test_a_student_learns_the_teachers_judgement_and_its_card_says_so(tmp_path, tiny_fer_npz, monkeypatch):  # noqa: F811
    """A tiny CNN trained on the soft labels alone (weight 1) of the shipped face_vgg moves onto
    them; the card records teacher, temperature and weight, and the engine file is exported."""
    from training import distill, train_face_cnn

    monkeypatch.setattr(distill, "CACHE", tmp_path / "cache")
    train_npz, test_npz = tiny_fer_npz
    out, runs = tmp_path / "models", tmp_path / "runs"
    common = ["--data", str(train_npz), "--test", str(test_npz), "--batch-size", "8", "--out", str(out), "--runs", str(runs),
              "--threads", "1", "--width", "0.125", "--augment", "none", "--lr", "3e-3", "--val-fraction", "0.2",
              "--teacher", "face_vgg", "--distill-temperature", "2", "--distill-weight", "1.0", "--name", "student",
              "--class-weight-power", "0"]

    train_face_cnn.main([*common, "--epochs", "15"])
    card = json.loads((out / "student.json").read_text())
    assert card["distillation"]["teacher"] == "face_vgg"
    assert card["distillation"]["temperature"] == 2.0 and card["distillation"]["weight"] == 1.0
    assert 0 <= card["distillation"]["teacher_validation_accuracy"] <= 1
    # the markdown card says it too, beside the student's own validation accuracy
    line = next(x for x in (out / "student.md").read_text().splitlines() if x.startswith("- **Distillation**"))
    assert "teacher `face_vgg`" in line and "T=2.0" in line and "weight 1.0" in line
    assert f"teacher {card['distillation']['teacher_validation_accuracy']:.4f}" in line
    assert f"student {card['metrics']['validation_accuracy']:.4f}" in line
    state = json.loads((runs / "student" / "state.json").read_text())
    losses = np.array([h["loss"] for h in state["history"]])
    # the loss is T^2 x cross-entropy to the softened teacher alone (weight 1); its floor, T^2 x
    # the softened teacher's entropy on the training faces, is reached when the student's softened
    # outputs are the teacher's: the distance to it (T^2 x KL) shrinks
    x, y = datasets.load_face_arrays(train_npz)
    train_idx, _ = datasets.stratified_split(y, 0.2, 1337)
    soft = registry.apply_temperature(registry.get_model("face_vgg").predict(faces_to_input(x[train_idx])), 2.0)
    floor = 4.0 * float(-(soft * np.log(soft)).sum(1).mean())
    assert losses.min() > floor - 1e-3
    assert np.mean(losses[-3:]) - floor < 0.7 * (np.mean(losses[:3]) - floor)
    assert card["engine"]["sha256"] == registry.sha256_file(out / "student.onnx")  # exported on save


def test_a_distilled_run_with_an_online_teacher_resumes_from_its_checkpoint(tmp_path, tiny_fer_npz, monkeypatch):  # noqa: F811
    """--online-teacher labels each epoch's augmented faces; a distilled run stopped after an
    epoch goes on from its checkpoint (its metric and loss load) and records how it was taught."""
    from training import distill, train_face_cnn

    monkeypatch.setattr(distill, "CACHE", tmp_path / "cache")
    labelled = []
    online = distill.online_targets

    def counting(teacher, x_epoch, y_epoch, temperature, batch=512):
        labelled.append(len(x_epoch))
        return online(teacher, x_epoch, y_epoch, temperature, batch)

    monkeypatch.setattr(distill, "online_targets", counting)
    train_npz, test_npz = tiny_fer_npz
    out, runs = tmp_path / "models", tmp_path / "runs"
    common = ["--data", str(train_npz), "--test", str(test_npz), "--batch-size", "8", "--out", str(out), "--runs", str(runs),
              "--threads", "1", "--width", "0.125", "--lr", "1e-3", "--val-fraction", "0.2", "--teacher", "face_vgg",
              "--online-teacher", "--mixup", "0.2", "--name", "student", "--validation-only"]
    train_face_cnn.main([*common, "--epochs", "1"])
    train_face_cnn.main([*common, "--epochs", "2", "--resume"])
    state = json.loads((runs / "student" / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    assert "resumed at epoch 1" in (runs / "student" / "train.log").read_text()
    assert len(labelled) == 2 and labelled[0] > 0  # one teacher pass per epoch, over the epoch's faces
