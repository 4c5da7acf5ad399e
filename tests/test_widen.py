"""training.widen: a wider network starts out computing exactly what the narrow one computed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recognition.inference.preprocessing import faces_to_input
from tests.test_training_face import copy_fer
from training import data as datasets


def _scrambled(model, seed: int):
    """Random kernels and BatchNorm statistics far from their initial 0/1, so that a copy or
    split gone wrong shows in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = weights
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.2, beta.shape),
                    rng.normal(0, 0.5, mean.shape),
                    rng.uniform(0.5, 2.0, var.shape),
                ]
            )
        else:
            layer.set_weights(
                [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in weights]
            )
    return model


@pytest.fixture(scope="module")
def real_faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fer")
    copy_fer(folder, "test", 3)
    x, _, _ = datasets.load_face_folder(folder)
    return faces_to_input(x)


@pytest.mark.parametrize("builder", ["build_vgg", "build_cnn"])
def test_widened_network_gives_the_narrow_ones_outputs_on_real_faces(
    builder, real_faces
):
    from training import face
    from training.widen import widen_into

    build = getattr(face, builder)
    narrow = _scrambled(build(7, 0.125), seed=1)
    wide = build(7, 0.2)
    before = [w.copy() for w in wide.get_weights()]
    widen_into(narrow, wide, seed=3)

    a = narrow.predict(real_faces, verbose=0)
    b = wide.predict(real_faces, verbose=0)
    assert wide.count_params() > narrow.count_params()
    assert np.abs(a - b).max() < 1e-5
    assert (a.argmax(1) == b.argmax(1)).all()
    # every weight tensor was replaced, and the copies of a channel are not twins: the split of
    # their outgoing weights differs, so training pulls them apart
    assert all(not np.array_equal(x, y) for x, y in zip(before, wide.get_weights()))
    convs = [layer for layer in wide.layers if type(layer).__name__ == "Conv2D"]
    kernel = convs[1].get_weights()[0]
    assert (
        len(
            {
                round(float(np.abs(kernel[..., c, :]).sum()), 6)
                for c in range(kernel.shape[2])
            }
        )
        == kernel.shape[2]
    )


def test_widening_refuses_what_is_not_the_same_architecture():
    from training.face import build_cnn, build_vgg
    from training.widen import widen_weights

    with pytest.raises(ValueError, match="same layers"):
        widen_weights(build_cnn(7, 0.125), build_vgg(7, 0.2))
    with pytest.raises(ValueError, match="cannot widen"):
        widen_weights(build_vgg(7, 0.2), build_vgg(7, 0.125))


@pytest.mark.slow
def test_widen_flag_warm_starts_a_wider_run_and_records_it(tmp_path):
    """--init-weights with --widen: the wider run starts from the narrow model's function (the
    card records it); without --widen the mismatch stays an error."""
    from training import train_face_vgg

    for split, per_class in (("train", 10), ("test", 3)):
        copy_fer(tmp_path / split, split, per_class)
    out, runs = tmp_path / "models", tmp_path / "runs"
    common = [
        "--data",
        str(tmp_path / "train"),
        "--test",
        str(tmp_path / "test"),
        "--batch-size",
        "32",
        "--out",
        str(out),
        "--runs",
        str(runs),
        "--threads",
        "1",
        "--epochs",
        "1",
    ]
    train_face_vgg.main([*common, "--width", "0.125", "--name", "narrow"])
    with pytest.raises(SystemExit, match="add --widen"):
        train_face_vgg.main(
            [
                *common,
                "--width",
                "0.2",
                "--name",
                "wide",
                "--init-weights",
                str(out / "narrow.keras"),
            ]
        )
    train_face_vgg.main(
        [
            *common,
            "--width",
            "0.2",
            "--lr",
            "0",
            "--name",
            "wide",
            "--init-weights",
            str(out / "narrow.keras"),
            "--widen",
        ]
    )
    card = json.loads((out / "wide.json").read_text())
    assert (
        card["warm_start"]["widened_from"]["to"]
        > card["warm_start"]["widened_from"]["parameters"]
    )
    assert "--widen" in card["training"]["command"]
