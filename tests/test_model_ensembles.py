"""Served ensembles: the registry's ensemble card (faces with mirror images, voice fold models),
the custom voice layers surviving save/load, the face ensemble chooser, and cross-validated voice
training over actor folds."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from recognition.inference import audio, faces, registry
from recognition.inference.labels import FACE_EMOTIONS
from recognition.inference.preprocessing import faces_to_input
from tests.conftest import FER2013, MEDIA, SPEECH
from training import voice as training_voice

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models"


@pytest.fixture
def face_models(tmp_path) -> Path:
    """The two shipped face networks in a folder of their own (the registry there is ours)."""
    for name in ("face_vgg", "face_cnn"):
        for suffix in (".json", ".keras", ".onnx"):
            if (SHIPPED / f"{name}{suffix}").exists():
                shutil.copy(SHIPPED / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    shutil.copy(SHIPPED / faces.DETECTOR_FILE, tmp_path / faces.DETECTOR_FILE)
    return tmp_path


def write_ensemble(directory: Path, name: str, members: list[str], tta: list[str], temperature: float = 1.0) -> dict:
    cards = [registry.load_card(m, directory) for m in members]
    card = {"name": name, "task": "face", "kind": "ensemble", "version": "0.test", "classes": list(FACE_EMOTIONS),
            "members": [{"name": c["name"], "sha256": c["sha256"]} for c in cards], "tta": tta, "temperature": temperature}
    registry.write_card(card, directory)
    return card


def fer_faces(per_class: int = 2) -> np.ndarray:
    import cv2

    paths = [p for name in FACE_EMOTIONS for p in sorted((FER2013 / "test" / name).glob("*.jpg"))[:per_class]]
    return np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths])


def test_face_ensemble_averages_calibrated_members_over_mirror_images(face_models):
    registry.clear_cache()
    write_ensemble(face_models, "both", ["face_vgg", "face_cnn"], ["hflip"], temperature=0.9)
    ensemble = registry.get_model("both", directory=face_models)
    x = faces_to_input(fer_faces())
    expected = np.mean([registry.get_model(n, directory=face_models).predict(batch)
                        for n in ("face_vgg", "face_cnn") for batch in (x, x[:, :, ::-1])], axis=0)
    assert np.allclose(ensemble.predict_raw(x), expected / expected.sum(1, keepdims=True), atol=1e-5)
    calibrated = ensemble.predict(x)
    assert np.allclose(calibrated, registry.apply_temperature(expected, 0.9), atol=1e-5)
    assert np.allclose(calibrated.sum(1), 1, atol=1e-5)
    # the mirror image of a face gets the same answer (flip averaging is symmetric)
    assert np.allclose(ensemble.predict(x[:, :, ::-1]), calibrated, atol=1e-5)
    info = ensemble.info()
    assert info["name"] == "both" and [m["name"] for m in info["members"]] == ["face_vgg", "face_cnn"]
    assert ensemble.predict_raw(x[:0]).shape == (0, 7)


def test_shift_views_are_the_faces_moved_two_pixels_as_opencv_would(face_models):
    import cv2

    registry.clear_cache()
    faces_u8 = fer_faces(1)
    x = faces_to_input(faces_u8)
    views = registry.tta_views(x, ["hflip", "shift2"])
    assert views.shape == (10 * len(x), 48, 48, 1)
    assert np.array_equal(views[: len(x)], x) and np.array_equal(views[len(x) : 2 * len(x)], x[:, :, ::-1])
    # the third view: each face moved 2 px right, edges repeated (cv2.BORDER_REPLICATE)
    moved = np.stack([cv2.warpAffine(f, np.float32([[1, 0, 2], [0, 1, 0]]), (48, 48), borderMode=cv2.BORDER_REPLICATE) for f in faces_u8])
    assert np.array_equal(views[2 * len(x) : 3 * len(x)], faces_to_input(moved))
    write_ensemble(face_models, "shifted", ["face_vgg"], ["hflip", "shift2"])
    ensemble = registry.get_model("shifted", directory=face_models)
    member = registry.get_model("face_vgg", directory=face_models)
    expected = member.predict(views).reshape(10, len(x), 7).mean(0)
    assert np.allclose(ensemble.predict_raw(x), expected / expected.sum(1, keepdims=True), atol=1e-5)
    assert np.allclose(ensemble.predict(x[:, :, ::-1]), ensemble.predict(x), atol=1e-5)  # still mirror-symmetric
    write_ensemble(face_models, "odd", ["face_vgg"], ["hflip", "rotate90"])
    with pytest.raises(registry.ModelUnavailable, match="rotate90"):
        registry.get_model("odd", directory=face_models)


def test_the_served_pipeline_runs_an_ensemble(face_models, settings):
    registry.clear_cache()
    write_ensemble(face_models, "both", ["face_vgg", "face_cnn"], ["hflip"])
    (face_models / "registry.json").write_text(json.dumps({"face": "both"}))
    settings.MODELS_DIR = face_models
    try:
        result = faces.analyze_image((MEDIA / "12_angry_men.jpg").read_bytes())
    finally:
        registry.clear_cache()
    assert result["model"]["name"] == "both" and len(result["model"]["members"]) == 2
    assert len(result["faces"]) >= 6
    for face in result["faces"]:
        assert face["emotion"] in FACE_EMOTIONS and sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-3)


def test_an_ensemble_refuses_changed_or_missing_members(face_models):
    registry.clear_cache()
    card = write_ensemble(face_models, "both", ["face_vgg", "face_cnn"], [])
    card["members"][1]["sha256"] = "0" * 64
    registry.write_card(card, face_models)
    with pytest.raises(registry.ModelUnavailable, match="sha256"):
        registry.get_model("both", directory=face_models)
    registry.write_card({**card, "members": [{"name": "face_gone"}]}, face_models)
    with pytest.raises(registry.ModelUnavailable, match="face_gone"):
        registry.get_model("both", directory=face_models)
    registry.write_card({**card, "members": [{"name": "both"}]}, face_models)
    with pytest.raises(registry.ModelUnavailable, match="names itself"):
        registry.get_model("both", directory=face_models)
    registry.write_card({**card, "members": []}, face_models)
    with pytest.raises(registry.ModelUnavailable, match="no members"):
        registry.get_model("both", directory=face_models)
    registry.clear_cache()


def test_voice_layers_survive_save_and_load_and_ignore_padding(tmp_path):
    import keras

    from recognition.inference.layers import UtteranceNorm

    signal = audio.decode_audio((SPEECH / "03-01-03-02-01-01-18.flac").read_bytes())
    window = audio.model_input(audio.trim(signal)[: 2 * audio.SAMPLE_RATE], "log_mel")  # 2 s of speech, padded to 3 s
    x = window[None]
    norm = np.asarray(UtteranceNorm()(x))[0]
    real = window.max(axis=1) > np.log(audio.LOG_FLOOR) + 1e-3
    assert 150 < real.sum() < 301  # padding present
    assert np.allclose(norm[real].mean(axis=0), 0, atol=1e-3) and np.all(norm[~real] == 0)

    model = training_voice.build_cnn(8, normalizer_data=np.repeat(x, 4, axis=0), pooling="attention", deltas=True, utterance_norm=True)
    assert model.get_layer("deltas").output.shape[-1] == 2 * audio.N_MELS
    before = np.asarray(model(x, training=False))
    model.save(tmp_path / "m.keras")
    loaded = registry.load_keras(tmp_path / "m.keras")
    assert np.allclose(np.asarray(loaded(x, training=False)), before, atol=1e-6)
    assert isinstance(loaded.get_layer("attentive_stats"), keras.layers.Layer)


@pytest.mark.parametrize("options", [{"frontend": "conv2d"}, {"pooling": "gru", "deltas": True}])
def test_voice_recipe_networks_learn_a_real_clip_and_load_for_serving(tmp_path, options):
    """The 2-D (time x bands) front end and the CRNN pooling: built from the command-line
    options, they take the serving input, fit two real clips of different emotions, and come
    back from disk through the registry's loader with the same outputs."""
    import keras

    keras.utils.set_random_seed(7)  # initial weights and shuffling: the same 30 steps on every run, whatever ran before
    clips = ["03-01-03-02-01-01-18.flac", "03-01-05-02-01-01-18.flac"]  # happy, angry
    x = np.stack([audio.model_input(audio.trim(audio.decode_audio((SPEECH / c).read_bytes())), "log_mel") for c in clips])
    y = np.eye(8)[[2, 4]]
    args = argparse.Namespace(arch="cnn", pooling="avgmax", deltas=False, utterance_norm=False, frontend="conv1d")
    for key, value in options.items():
        setattr(args, key, value)
    recipe = training_voice.model_options(args)
    assert {k: recipe[k] for k in options} == options
    model = training_voice.build_cnn(8, normalizer_data=np.repeat(x, 4, axis=0), **recipe)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    loss = model.fit(x, y, epochs=30, batch_size=2, verbose=0).history["loss"]
    # One step an epoch on a batch of two, with BatchNorm in training mode: single losses jump by
    # 2x from step to step (and with the CPU's kernels), so the last five are averaged.
    assert np.mean(loss[-5:]) < loss[0] / 2
    before = np.asarray(model(x, training=False))
    model.save(tmp_path / "m.keras")
    loaded = registry.load_keras(tmp_path / "m.keras")
    assert np.allclose(np.asarray(loaded(x, training=False)), before, atol=1e-5)


def test_voice_conv2d_front_end_refuses_deltas():
    with pytest.raises(ValueError, match="no deltas"):
        training_voice.build_cnn(8, frontend="conv2d", deltas=True)


@pytest.mark.slow
def test_face_ensemble_command_chooses_on_validation_and_serves(face_models, tmp_path):
    from tests.test_training_face import copy_fer
    from training import face_ensemble

    copy_fer(tmp_path / "train", "train", 12)
    copy_fer(tmp_path / "test", "test", 3)
    (face_models / "registry.json").write_text(json.dumps({"face": "face_vgg", "voice": "x"}))
    registry.clear_cache()
    card = face_ensemble.main(["--candidates", "face_vgg", "face_cnn", "--name", "chosen", "--models-dir", str(face_models),
                               "--train", str(tmp_path / "train"), "--test", str(tmp_path / "test"), "--serve"])
    assert len(card["selection"]) == 9  # 3 subsets x (no views, mirror, mirror + shifts)
    assert {tuple(r["tta"]) for r in card["selection"]} == {(), ("hflip",), ("hflip", "shift2")}
    best = card["selection"][0]
    assert best["validation_accuracy"] == max(r["validation_accuracy"] for r in card["selection"])
    assert [m["name"] for m in card["members"]] == best["members"] and card["tta"] == best["tta"]
    assert card["metrics"]["test"]["n"] == 21 and "Selection on validation" in (face_models / "chosen.md").read_text()
    assert json.loads((face_models / "registry.json").read_text()) == {"face": "chosen", "voice": "x"}
    registry.clear_cache()
    from training.evaluate import evaluate_face

    assert evaluate_face(tmp_path / "test", "chosen", directory=face_models)["accuracy"] == card["metrics"]["test"]["accuracy"]
    registry.clear_cache()


def test_face_ensemble_keeps_to_a_budget_of_network_passes(face_models, tmp_path):
    """--max-passes 2 (the live budget): two members with one view each, or one member with its
    mirror view, never two members with their mirror views (4 passes)."""
    from tests.test_training_face import copy_fer
    from training import face_ensemble

    copy_fer(tmp_path / "train", "train", 12)
    copy_fer(tmp_path / "test", "test", 3)
    registry.clear_cache()
    card = face_ensemble.main(["--candidates", "face_vgg", "face_cnn", "--name", "budget", "--models-dir", str(face_models),
                               "--train", str(tmp_path / "train"), "--test", str(tmp_path / "test"), "--max-passes", "2"])
    rows = {("+".join(r["members"]), tuple(r["tta"])) for r in card["selection"]}
    assert rows == {("face_vgg", ()), ("face_vgg", ("hflip",)), ("face_cnn", ()), ("face_cnn", ("hflip",)), ("face_vgg+face_cnn", ())}
    assert len(card["members"]) * (2 if card["tta"] else 1) <= 2
    registry.clear_cache()


@pytest.mark.slow
def test_cross_validated_voice_training_serves_the_fold_ensemble(tmp_path, monkeypatch):
    from training import train_voice

    root = tmp_path / "ravdess"
    clips = sorted(SPEECH.glob("*.flac"))
    for clip, actor in zip(clips, (1, 2, 13, 14, 17, 18), strict=False):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        shutil.copy(clip, folder / f"{clip.stem[:-2]}{actor:02d}.flac")
    monkeypatch.setattr(training_voice, "CACHE", tmp_path / "cache")
    models, runs = tmp_path / "models", tmp_path / "runs"
    common = ["--data", str(root), "--out", str(models), "--runs", str(runs), "--batch-size", "2", "--epochs", "2", "--no-formats"]
    cv = train_voice.main(["--folds", "2", "--cv-only", "--name", "tiny_cv", "--mixup", "0.2", "--deltas", *common])
    assert [f["actors"] for f in cv["cv"]["folds"]] == [list(range(1, 9)), list(range(9, 17))]
    assert [f["n"] for f in cv["cv"]["folds"]] == [2, 2] and not (models / "tiny_cv.json").exists()  # actors 17-20 untouched
    assert set(cv["cv"]["window_combiners"]) == {"mean", "geometric", "max_confidence"}

    card = train_voice.main(["--folds", "2", "--name", "tiny_cv", "--resume", "--serve", "--mixup", "0.2", "--deltas", *common])
    assert "resumed after epoch 2" in (runs / "tiny_cv" / "train.log").read_text()  # the CV run's folds are reused
    assert card["kind"] == "ensemble" and [m["name"] for m in card["members"]] == ["tiny_cv_f1", "tiny_cv_f2"]
    assert card["metrics"]["test"]["n"] == 2 and "## Folds" in (models / "tiny_cv.md").read_text()
    assert json.loads((models / "registry.json").read_text())["voice"] == "tiny_cv"
    registry.clear_cache()
    model = registry.get_model("tiny_cv", task="voice", directory=models)
    from recognition.inference import voice

    result = voice.analyse_signal(audio.decode_audio(clips[0].read_bytes()), model)
    assert result["model"]["name"] == "tiny_cv" and sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    registry.clear_cache()


def test_live_frames_use_the_live_model_when_one_is_named(face_models, settings):
    from recognition.live import pipeline, protocol

    registry.clear_cache()
    write_ensemble(face_models, "both", ["face_vgg", "face_cnn"], ["hflip"])
    settings.MODELS_DIR = face_models
    import cv2

    photo = cv2.imread(str(MEDIA / "test_image.jpg"))
    frame = cv2.imencode(".jpg", cv2.resize(photo, (1024, 768), interpolation=cv2.INTER_AREA))[1].tobytes()  # a webcam-sized frame
    try:
        (face_models / "registry.json").write_text(json.dumps({"face": "both"}))
        assert faces.live_model_name() is None
        assert pipeline.analyze_frame(frame, protocol.LiveLimits())["model"]["name"] == "both"
        (face_models / "registry.json").write_text(json.dumps({"face": "both", "face_live": "face_vgg"}))
        reply = pipeline.analyze_frame(frame, protocol.LiveLimits())
        assert reply["model"] == {"name": "face_vgg", "version": registry.load_card("face_vgg", face_models)["version"]}
        assert len(reply["faces"]) >= 5
        assert faces.analyze_image(frame)["model"]["name"] == "both"  # uploads keep the served ensemble
    finally:
        registry.clear_cache()


@pytest.mark.django_db
def test_the_models_api_lists_an_ensemble_available_only_with_all_member_files(face_models, settings, user):
    from rest_framework.test import APIClient

    write_ensemble(face_models, "both", ["face_vgg", "face_cnn"], ["hflip"])
    card = registry.load_card("both", face_models)
    registry.write_card({**card, "metrics": {"test": {"accuracy": 0.66, "ece": 0.03, "n": 3435}}}, face_models)
    (face_models / "registry.json").write_text(json.dumps({"face": "both", "face_live": "face_vgg"}))
    settings.MODELS_DIR = face_models
    client = APIClient()
    client.force_authenticate(user)
    listed = {m["task"]: m for m in client.get("/api/v1/models/").json()}
    assert listed["face"]["name"] == "both" and listed["face"]["available"] is True and listed["face"]["accuracy"] == 0.66
    assert listed["face_live"]["name"] == "face_vgg" and listed["face_live"]["available"] is True
    (face_models / "face_cnn.keras").unlink()
    listed = {m["task"]: m for m in client.get("/api/v1/models/").json()}
    assert listed["face"]["available"] is False and "face_cnn.keras" in listed["face"]["detail"]


@pytest.mark.slow
def test_recipes_are_combined_by_their_out_of_fold_accuracy(tmp_path, monkeypatch):
    from training import train_voice, voice_ensemble

    root = tmp_path / "ravdess"
    clips = sorted(SPEECH.glob("*.flac"))
    for clip, actor in zip(clips, (1, 2, 13, 14, 17, 18), strict=False):
        (root / f"Actor_{actor:02d}").mkdir(parents=True)
        shutil.copy(clip, root / f"Actor_{actor:02d}" / f"{clip.stem[:-2]}{actor:02d}.flac")
    monkeypatch.setattr(training_voice, "CACHE", tmp_path / "cache")
    common = ["--data", str(root), "--runs", str(tmp_path / "runs"), "--batch-size", "2", "--epochs", "1", "--folds", "2", "--cv-only"]
    train_voice.main(["--name", "plain", "--out", str(tmp_path / "plain"), *common])
    train_voice.main(["--name", "attn", "--pooling", "attention", "--out", str(tmp_path / "attn"), *common])
    models = tmp_path / "models"
    card = voice_ensemble.main(["--runs", str(tmp_path / "plain"), str(tmp_path / "attn"), "--data", str(root),
                                "--name", "chosen", "--out", str(models), "--no-formats", "--serve"])
    candidates = card["metrics"]["cross_validation"]["candidates"]
    assert sorted(tuple(sorted(c["recipes"])) for c in candidates) == [("attn",), ("attn", "plain"), ("plain",)]
    best = candidates[0]
    assert best["mean"] == max(c["mean"] for c in candidates)
    assert {m["recipe"] for m in card["members"]} == set(best["recipes"]) and len(card["members"]) == 2 * len(best["recipes"])
    for m in card["members"]:  # copied next to the ensemble card, unchanged
        assert registry.sha256_file(models / f"{m['name']}.keras") == m["sha256"]
    assert card["metrics"]["test"]["n"] == 2 and card["metrics"]["short_clip"]["n"] == 2
    assert json.loads((models / "registry.json").read_text()) == {"voice": "chosen"}
    text = (models / "chosen.md").read_text()
    assert "Recipes and their combinations" in text and "shorter than one window" in text
    registry.clear_cache()
    model = registry.get_model("chosen", task="voice", directory=models)
    assert len(model.members) == len(card["members"])
    registry.clear_cache()

    # --final full: the same choice, served as one model per chosen recipe retrained on actors 1-16
    full_args = ["--runs", str(tmp_path / "plain"), str(tmp_path / "attn"), "--data", str(root), "--final", "full",
                 "--epochs", "1", "--batch-size", "2", "--train-runs", str(tmp_path / "full_runs"), "--temperature-scale", "0.5",
                 "--name", "full", "--out", str(models), "--no-formats", "--serve"]
    full = voice_ensemble.main(full_args)
    assert full["metrics"]["cross_validation"]["candidates"] == candidates  # chosen exactly as before
    assert [m["name"] for m in full["members"]] == [f"full_{r}" for r in best["recipes"]]
    assert full["temperature"] == card["temperature"]  # fitted on the same out-of-fold averages
    for m in full["members"]:
        member = json.loads((models / f"{m['name']}.json").read_text())
        assert member["data"]["train"] == "RAVDESS actors 1-16" and member["training"]["epochs"] == 1
        assert registry.sha256_file(models / member["file"]) == m["sha256"]
        from training.metrics import fit_temperature
        from training.voice_folds import clip_matrix

        oof = voice_ensemble.out_of_fold(voice_ensemble.load_recipe(tmp_path / m["recipe"]), root)
        expected = fit_temperature(*clip_matrix([r for fold in oof for r in fold])) * 0.5  # the recipe's, scaled
        assert member["temperature"] == pytest.approx(expected, abs=1e-4) and "x 0.5" in member["data"]["validation"]
        assert "[full] epoch 1/1" in (tmp_path / "full_runs" / m["name"] / "train.log").read_text()
    assert full["metrics"]["test"]["n"] == 2 and "retrained on all of actors 1-16" in (models / "full.md").read_text()
    assert json.loads((models / "registry.json").read_text()) == {"voice": "full"}
    model = registry.get_model("full", task="voice", directory=models)
    assert len(model.members) == len(best["recipes"])
    registry.clear_cache()
    # A second run (another clone with the committed checkpoints) resumes instead of retraining.
    import keras

    def weights(name: str) -> list[np.ndarray]:
        return keras.models.load_model(models / f"{name}.keras", compile=False).get_weights()

    before = {m["name"]: weights(m["name"]) for m in full["members"]}
    again = voice_ensemble.main(full_args)
    for m in again["members"]:  # the same weights (the .keras zip itself is rewritten with new timestamps)
        assert all(np.array_equal(a, b) for a, b in zip(weights(m["name"]), before[m["name"]], strict=True))
    for m in full["members"]:
        assert "[full] resumed after epoch 1" in (tmp_path / "full_runs" / m["name"] / "train.log").read_text()
    registry.clear_cache()
    # --train-only: every recipe's full model into its checkpoint while others are still being
    # cross-validated; nothing chosen, nothing written next to the served models, no test actor scored.
    listing = {p.name: p.stat().st_mtime_ns for p in models.iterdir()}
    pre_args = list(full_args)
    pre_args[pre_args.index("--name") + 1] = "pre"
    pre = voice_ensemble.main([*pre_args, "--train-only"])
    assert pre == {"trained": ["pre_plain", "pre_attn"]}
    assert {p.name: p.stat().st_mtime_ns for p in models.iterdir()} == listing
    for name in pre["trained"]:
        assert (tmp_path / "full_runs" / name / "full" / "last.keras").exists()
        assert "[full] epoch 1/1" in (tmp_path / "full_runs" / name / "train.log").read_text()


@pytest.mark.slow
def test_nested_comparison_scores_fold_average_and_full_model_on_an_outer_fold(tmp_path, monkeypatch):
    """training.voice_nested: inside actors 1-16 only, the average of 3 inner fold models and one
    model on all 12 inner actors, both scored on the outer fold; resumable, results kept."""
    from training import voice_nested

    root = tmp_path / "ravdess"
    clips = sorted(SPEECH.glob("*.flac"))
    for actor in range(1, 21):
        clip = clips[actor % len(clips)]
        (root / f"Actor_{actor:02d}").mkdir(parents=True)
        shutil.copy(clip, root / f"Actor_{actor:02d}" / f"{clip.stem[:-2]}{actor:02d}.flac")
    monkeypatch.setattr(training_voice, "CACHE", tmp_path / "cache")
    args = ["--data", str(root), "--runs", str(tmp_path / "runs"), "--name", "nested", "--epochs", "1", "--batch-size", "2", "--outer", "1"]
    rows = voice_nested.main(args)
    assert len(rows) == 1 and rows[0]["outer"] == [1, 4]
    for how in ("folds", "full"):
        assert rows[0][how]["n"] == 4 and 0.0 <= rows[0][how]["accuracy"] <= 1.0 and 0 < rows[0][how]["mean_confidence"] <= 1
    assert len(rows[0]["fold_members"]) == 3 and rows[0]["full_temperature"] > 0
    log = (tmp_path / "runs" / "nested" / "train.log").read_text()
    assert all(f"[outer1_inner{j}] epoch 1/1" in log for j in (1, 2, 3)) and "[outer1_full] epoch 1/1" in log
    assert [p.name.split("-")[3] for p in (tmp_path / "cache").glob("voice-*")] == ["16"]  # features of actors 1-16 only, never 17-20
    assert voice_nested.main(args) == rows  # a finished outer fold is read back, not retrained


@pytest.mark.slow
def test_format_check_out_of_fold_scores_every_codec_on_a_fold_model(tmp_path):
    """training.voice_formats_oof: real clips re-encoded as WAV 48k / MP3 / M4A / OGG / WEBM and
    scored by a served fold model on actors it never heard (fold 1: actors 1-4)."""
    from training import voice_formats_oof

    root = tmp_path / "ravdess"
    clips = sorted(SPEECH.glob("*.flac"))[:2]
    for clip, actor in zip(clips, (1, 2), strict=True):
        (root / f"Actor_{actor:02d}").mkdir(parents=True)
        shutil.copy(clip, root / f"Actor_{actor:02d}" / f"{clip.stem[:-2]}{actor:02d}.flac")
    rows = voice_formats_oof.main(["--recipes", "voice_cv_deltas", "--folds", "1", "--data", str(root)])
    assert len(rows) == 1 and rows[0]["model"] == "voice_cv_deltas_f1" and rows[0]["actors"] == "1-4"
    formats = ("flac16k", "wav48k", "mp3_128k", "m4a_aac_128k", "ogg_opus_64k", "webm_opus_64k")
    assert all(rows[0][k] in (0.0, 0.5, 1.0) for k in formats)  # two clips each
    assert rows[0]["spread_points"] == round(100 * (max(rows[0][k] for k in formats) - min(rows[0][k] for k in formats)), 2)
