"""Voice training and evaluation commands on tiny folders of real RAVDESS clips."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recognition.inference import audio, registry
from tests.conftest import SPEECH
from training import voice as training_voice

REPO = Path(__file__).resolve().parents[1]
CLIPS = sorted(SPEECH.glob("*.flac"))


def test_ravdess_names_are_parsed_and_others_ignored(tmp_path):
    assert training_voice.parse_ravdess_name(Path("03-01-05-02-01-01-18.flac")) == (4, 18)
    assert training_voice.parse_ravdess_name(Path("a/b/03-01-08-01-02-02-07.mp3")) == (7, 7)
    assert training_voice.parse_ravdess_name(Path("03-01-09-01-01-01-18.wav")) is None  # no emotion 09
    assert training_voice.parse_ravdess_name(Path("recording.wav")) is None
    (tmp_path / "deep" / "er").mkdir(parents=True)
    shutil.copy(CLIPS[0], tmp_path / "deep" / "er" / CLIPS[0].name)
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "03-01-01-01-01-01-01.txt").write_text("not audio either")
    assert [c.path.name for c in training_voice.list_clips(tmp_path)] == [CLIPS[0].name]


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """Three held-out clips at different depths, formats and sample rates, plus a stray file."""
    jobs = [(CLIPS[4], "a/b/c", "wav", "pcm_s16le", 44100), (CLIPS[5], "a", "mp3", "libmp3lame", 22050), (CLIPS[2], "", "m4a", "aac", 48000)]
    for src, sub, ext, codec, rate in jobs:
        folder = tmp_path / sub
        folder.mkdir(parents=True, exist_ok=True)
        signal = audio.resample(audio.decode_audio(src.read_bytes()), 16000, rate)
        training_voice.encode(signal, rate, folder / f"{src.stem}.{ext}", codec, None if codec == "pcm_s16le" else 128_000)
    (tmp_path / "readme.md").write_text("ignored")
    return tmp_path


def test_evaluate_folder_scores_any_format_and_depth(mixed_folder):
    result = training_voice.evaluate_folder(mixed_folder, None)
    assert set(result) >= {"accuracy", "n", "per_class_recall", "confusion", "model", "seconds"}
    assert result["n"] == 3
    confusion = np.asarray(result["confusion"])
    assert confusion.shape == (8, 8) and confusion.sum() == 3
    assert confusion[4].sum() == 2 and confusion[2].sum() == 1  # two angry clips, one happy
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / 3)
    assert result["per_class_recall"]["neutral"] is None
    assert result["model"]["name"] == registry.served_name("voice")
    json.dumps(result)  # the command prints it as JSON


def test_evaluate_folder_without_ravdess_files_is_an_error(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"RIFF")
    with pytest.raises(ValueError, match="no RAVDESS"):
        training_voice.evaluate_folder(tmp_path, None)


def test_train_command_has_help():
    out = subprocess.run([sys.executable, "-m", "training.train_voice", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and "--resume" in out.stdout and "--arch" in out.stdout


@pytest.fixture
def tiny_ravdess(tmp_path) -> Path:
    """The six clips given new actor numbers: 2 to train (1, 2), 2 inner validation (13, 14),
    2 test (17, 18); one of them as MP3 to go through the upload decoder."""
    root = tmp_path / "ravdess"
    for clip, actor in zip(CLIPS, (1, 2, 13, 14, 17, 18)):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        stem = clip.stem[:-2] + f"{actor:02d}"
        if actor == 2:
            training_voice.encode(audio.decode_audio(clip.read_bytes()), 16000, folder / f"{stem}.mp3", "libmp3lame", 128_000)
        else:
            shutil.copy(clip, folder / f"{stem}.flac")
    return root


@pytest.mark.slow
def test_two_epoch_training_run_writes_model_card_and_resumes(tmp_path, tiny_ravdess, monkeypatch):
    from training import train_voice

    monkeypatch.setattr(training_voice, "CACHE", tmp_path / "cache")
    models, runs = tmp_path / "models", tmp_path / "runs"
    models.mkdir()
    (models / "registry.json").write_text(json.dumps({"face": "face_something"}))
    common = ["--data", str(tiny_ravdess), "--out", str(models), "--runs", str(runs), "--batch-size", "2", "--seed", "7"]
    card = train_voice.main(["--arch", "cnn", "--name", "tiny_cnn", "--epochs", "2", "--serve", *common])

    saved = json.loads((models / "tiny_cnn.json").read_text())
    assert saved["sha256"] == registry.sha256_file(models / "tiny_cnn.keras") == card["sha256"]
    assert saved["classes"] == list(training_voice.VOICE_EMOTIONS)
    assert saved["metrics"]["test"]["n"] == 2 and saved["metrics"]["inner_validation"]["n"] == 2
    assert set(saved["metrics"]["formats"]) >= {"flac16k", "wav48k", "mp3_128k", "m4a_aac_128k"}
    assert saved["size_bytes"] < 60e6 and saved["temperature"] > 0
    assert "Confusion matrix" in (models / "tiny_cnn.md").read_text()
    assert json.loads((models / "registry.json").read_text()) == {"face": "face_something", "voice": "tiny_cnn"}
    state = json.loads((runs / "tiny_cnn" / "final" / "state.json").read_text())
    assert state["epoch"] == 2 and len(state["history"]) == 2

    # The saved model serves: same code path as uploads.
    model = registry.get_model("tiny_cnn", task="voice", directory=models)
    from recognition.inference import voice

    result = voice.analyse_signal(audio.decode_audio(CLIPS[0].read_bytes()), model)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)

    # --resume continues from the checkpoints instead of starting over.
    train_voice.main(["--arch", "cnn", "--name", "tiny_cnn", "--epochs", "3", "--resume", "--no-formats", *common])
    state = json.loads((runs / "tiny_cnn" / "inner" / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
    assert "resumed after epoch 2" in (runs / "tiny_cnn" / "train.log").read_text()


@pytest.mark.slow
def test_baseline_mlp_trains_on_mean_mfcc(tmp_path, tiny_ravdess, monkeypatch):
    from training import train_voice

    monkeypatch.setattr(training_voice, "CACHE", tmp_path / "cache")
    card = train_voice.main(["--arch", "mlp", "--name", "tiny_mlp", "--epochs", "2", "--no-formats", "--data", str(tiny_ravdess),
                             "--out", str(tmp_path / "models"), "--runs", str(tmp_path / "runs")])
    assert card["input"]["features"] == "mfcc_mean" and card["input"]["shape"] == [40]
    assert card["metrics"]["test"]["n"] == 2
    assert not (tmp_path / "models" / "registry.json").exists()  # not served unless asked


@pytest.mark.parametrize("argv", [
    [],
    ["--frontend", "conv2d", "--pooling", "gru", "--seed", "2"],
    ["--deltas", "--utterance-norm", "--mixup", "0.2", "--no-augment", "--epochs", "9", "--lr", "0.01", "--label-smoothing", "0.05"],
    ["--arch", "mlp", "--weight-decay", "0.01"],
])
def test_a_recipe_card_gives_back_the_arguments_that_trained_it(argv):
    """voice_ensemble --final full retrains a recipe from what its fold cards recorded."""
    import argparse

    from training.voice import add_arguments, apply_defaults
    from training.voice_folds import args_from_recipe, recipe_of

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = apply_defaults(parser.parse_args([*argv, "--folds", "4"]))
    again = args_from_recipe(recipe_of(args), folds=4, name="again")
    assert recipe_of(again) == recipe_of(args) and again.name == "again"
    assert args_from_recipe(recipe_of(args), folds=4).name == args.name  # the default follows the recipe's arch
