"""Retraining on people's corrections (issue 18): a dataset exported by the site's own export
code goes into face training with ``--extra-data`` (repeatable, folder or .zip), a tiny model is
fine-tuned on it, and its card records what was used (counts per class, manifest sha256)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognition.analyses import services
from recognition.corrections import dataset as correction_dataset
from recognition.corrections import selectors as correction_selectors
from recognition.corrections import services as corrections
from recognition.inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS
from tests.test_training_face import copy_fer
from training import data as datasets
from training import extra_data


@pytest.fixture
def site_export(user, face_photo, speech_clip, tmp_path) -> tuple[Path, Path]:
    """Corrections made through the site's services on real analyses, exported by the site's
    dataset writer: a folder and the same as a .zip (what the download gives)."""
    photo = services.run_analysis(
        analysis_id=services.create_analysis(owner=user, upload=face_photo, filename="me.jpg", enqueue=False).pk
    )
    clip = services.run_analysis(
        analysis_id=services.create_analysis(owner=user, upload=speech_clip.read_bytes(), filename="s.flac", enqueue=False).pk
    )
    assert photo.result["faces"] and clip.status == "done"
    labels = ["sad", "surprise", "angry", "happy"]
    for n, _ in enumerate(photo.result["faces"][:4], start=1):
        corrections.set_correction(owner=user, analysis_id=photo.pk, item=f"face-{n}", label=labels[n - 1])
    corrections.set_correction(owner=user, analysis_id=clip.pk, item="window-1", label="calm")
    chosen = list(correction_selectors.corrections_for(user))
    folder = tmp_path / "export"
    summary = correction_dataset.write_dataset(chosen, folder)
    zipped = tmp_path / "export.zip"
    with open(zipped, "wb") as fh:
        assert correction_dataset.write_dataset(chosen, fh)["manifest_sha256"] == summary["manifest_sha256"]
    return folder, zipped


@pytest.mark.django_db
def test_an_export_reads_as_extra_face_and_voice_data(site_export):
    folder, zipped = site_export
    rows = list(csv.DictReader((folder / "manifest.csv").open()))
    faces = [r for r in rows if r["task"] == "face"]
    x, y, entry = extra_data.load_face_extra(folder)
    assert x.shape == (len(faces), 48, 48) and x.dtype == np.uint8
    assert entry["manifest_sha256"] == hashlib.sha256((folder / "manifest.csv").read_bytes()).hexdigest()
    expected: dict[str, int] = {}
    for r in faces:
        expected[r["label"]] = expected.get(r["label"], 0) + 1
    assert entry["counts"] == expected and entry["n"] == len(faces)
    # the pixels are the exported crops, unchanged
    first_path = min(faces, key=lambda r: (FACE_EMOTIONS.index(r["label"]), r["path"]))["path"]
    first = cv2.imread(str(folder / first_path), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(x[0], first)
    # the .zip is the same data
    xz, yz, entry_z = extra_data.load_face_extra(zipped)
    assert np.array_equal(xz, x) and np.array_equal(yz, y) and entry_z["manifest_sha256"] == entry["manifest_sha256"]

    clips, entries = extra_data.voice_clips([folder])
    assert [(VOICE_EMOTIONS[c.label], c.actor) for c in clips] == [("calm", 0)]
    assert entries[0]["counts"] == {"calm": 1}
    from training.voice import load_signal

    assert len(load_signal(clips[0].path)) > 16000  # a real 16 kHz window of speech


def test_a_zip_with_unsafe_members_is_refused(tmp_path):
    import zipfile

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../outside.png", b"x")
    with pytest.raises(SystemExit):
        extra_data.load_face_extra(evil)
    with pytest.raises(SystemExit):
        extra_data.load_face_extra(tmp_path / "missing")


@pytest.mark.slow
@pytest.mark.django_db
def test_fine_tuning_a_tiny_model_on_a_site_export_records_it_in_the_card(site_export, tmp_path):
    from training import train_face_cnn

    folder, zipped = site_export
    for split, per_class in (("train", 10), ("test", 3)):
        copy_fer(tmp_path / split, split, per_class)
        x, y, _ = datasets.load_face_folder(tmp_path / split)
        np.savez(tmp_path / f"{split}.npz", x=x, y=y)
    out, runs = tmp_path / "models", tmp_path / "runs"
    common = ["--data", str(tmp_path / "train.npz"), "--test", str(tmp_path / "test.npz"), "--limit", "64",
              "--width", "0.125", "--batch-size", "32", "--epochs", "1", "--out", str(out), "--runs", str(runs)]  # fmt: skip

    train_face_cnn.main([*common, "--name", "tiny_base"])
    base = json.loads((out / "tiny_base.json").read_text())
    assert "extra_data" not in base

    train_face_cnn.main([*common, "--name", "tiny_tuned", "--init-weights", str(out / "tiny_base.keras"),
                         "--extra-data", str(folder), "--extra-data", str(zipped)])  # fmt: skip
    card = json.loads((out / "tiny_tuned.json").read_text())
    sha = hashlib.sha256((folder / "manifest.csv").read_bytes()).hexdigest()
    _, _, expected = extra_data.load_face_extra(folder)
    assert [e["path"] for e in card["extra_data"]] == [str(folder), str(zipped)]
    assert all(e["manifest_sha256"] == sha and e["counts"] == expected["counts"] for e in card["extra_data"])
    assert card["warm_start"]["sha256"] == base["sha256"]  # fine-tuned from the base model
    assert card["metrics"]["test"]["n"] == 21  # the held-out set is untouched by the extra data
    log = (runs / "tiny_tuned" / "train.log").read_text()
    assert f"extra data: {2 * expected['n']} faces from 2 export(s)" in log
    assert "Extra training data (people's corrections" in (out / "tiny_tuned.md").read_text()
