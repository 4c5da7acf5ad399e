"""The serving engine: every served network answers the same through ONNX Runtime as through
Keras on real faces and real speech (to 1e-5), engine files are checked like model files, a
saved model gets its engine file, and a serving process never imports TensorFlow."""

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

from recognition.inference import audio, engine, faces, registry
from recognition.inference.labels import FACE_EMOTIONS
from recognition.inference.preprocessing import faces_to_input, to_gray
from tests.conftest import MEDIA, SPEECH
from training.export_engine import served_networks

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models"


@pytest.fixture(autouse=True)
def fresh_registry():
    """Every test loads models afresh and leaves no cached model behind."""
    registry.clear_cache()
    yield
    registry.clear_cache()


def edit_card(directory: Path, name: str, change) -> dict:
    """Apply ``change`` to the card ``directory/name.json`` in place; the new card."""
    path = directory / f"{name}.json"
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))
    return card


def real_face_batch() -> np.ndarray:
    """Every face of the two test photos, as served (aligned 48x48), and their mirror images."""
    crops = []
    for photo in ("test_image.jpg", "12_angry_men.jpg"):
        bgr = cv2.imread(str(MEDIA / photo))
        crops += faces.face_crops(to_gray(bgr), faces.detect_with_landmarks(bgr))
    x = faces_to_input(np.stack(crops))
    return np.concatenate([x, x[:, :, ::-1]])


def real_clip_batch(kind: str) -> np.ndarray:
    """The windows of every test speech clip, featurised as served."""
    windows = []
    for path in sorted(SPEECH.glob("*.flac")):
        signal = audio.as_signal(path.read_bytes())
        start, end = audio.trim_bounds(signal)
        trimmed = signal[start:end]
        windows += [audio.model_input(trimmed[s:e], kind) for s, e in audio.window_bounds(len(trimmed))]
    return np.stack(windows)


@pytest.mark.parametrize("name", served_networks(SHIPPED))
def test_served_networks_answer_as_keras_does_on_real_inputs(name, monkeypatch):
    monkeypatch.setenv("INFERENCE_ENGINE", "onnx")
    card = registry.load_card(name, SHIPPED)
    loaded = registry.get_model(name, directory=SHIPPED)
    assert loaded.engine.startswith("onnx") and card["engine"]["sha256"] == registry.sha256_file(SHIPPED / card["engine"]["file"])
    x = real_face_batch() if card["task"] == "face" else real_clip_batch(card["input"].get("features", "log_mel"))
    assert len(x) >= 6
    onnx = engine.OnnxRunner(SHIPPED / card["engine"]["file"]).run(x).astype(np.float64)  # the float file
    keras = np.asarray(loaded.keras_model.predict_on_batch(x), dtype=np.float64)
    assert onnx.shape == keras.shape == (len(x), len(card["classes"]))
    assert np.abs(onnx - keras).max() <= 1e-5
    assert (onnx.argmax(1) == keras.argmax(1)).all()
    if card["engine"].get("int8"):  # an int8 file serves: judged by accuracy (its card), close here
        assert loaded.engine == "onnx-int8"
        served = loaded.predict_raw(x)
        assert (served.argmax(1) == keras.argmax(1)).mean() >= 0.8
        assert float(np.abs(served - keras).mean()) < 0.03


@pytest.fixture
def face_vgg_dir(tmp_path) -> Path:
    for suffix in (".json", ".keras", ".onnx"):
        shutil.copy(SHIPPED / f"face_vgg{suffix}", tmp_path / f"face_vgg{suffix}")
    return tmp_path


def test_an_altered_engine_file_is_refused_not_served(face_vgg_dir, monkeypatch):
    monkeypatch.setenv("INFERENCE_ENGINE", "onnx")
    blob = bytearray((face_vgg_dir / "face_vgg.onnx").read_bytes())
    blob[-100] ^= 0xFF
    (face_vgg_dir / "face_vgg.onnx").write_bytes(bytes(blob))
    with pytest.raises(registry.ModelUnavailable, match="does not match the sha256"):
        registry.get_model("face_vgg", directory=face_vgg_dir)
    (face_vgg_dir / "face_vgg.onnx").unlink()
    registry.clear_cache()
    with pytest.raises(registry.ModelUnavailable, match="engine file .* is missing"):
        registry.get_model("face_vgg", directory=face_vgg_dir)


def test_an_engine_file_from_another_keras_file_is_refused(face_vgg_dir, monkeypatch):
    monkeypatch.setenv("INFERENCE_ENGINE", "onnx")
    edit_card(face_vgg_dir, "face_vgg", lambda card: card["engine"].update(source_sha256="0" * 64))
    with pytest.raises(registry.ModelUnavailable, match="exported from another"):
        registry.get_model("face_vgg", directory=face_vgg_dir)


def test_inference_engine_keras_serves_through_keras(face_vgg_dir, monkeypatch):
    monkeypatch.setenv("INFERENCE_ENGINE", "keras")
    loaded = registry.get_model("face_vgg", directory=face_vgg_dir)
    assert loaded.engine == "keras" and loaded.runner is None
    x = real_face_batch()[:4]
    monkeypatch.setenv("INFERENCE_ENGINE", "onnx")
    registry.clear_cache()
    onnx = registry.get_model("face_vgg", directory=face_vgg_dir)
    assert onnx.engine == "onnx"
    assert np.abs(loaded.predict(x) - onnx.predict(x)).max() <= 1e-5


def test_saving_a_model_exports_its_engine_file(tiny_face_models, monkeypatch):
    """write_card (every trainer's save) exports the engine file, and serving uses it."""
    monkeypatch.setenv("INFERENCE_ENGINE", "onnx")
    card = registry.load_card("face_tiny", tiny_face_models)
    entry = card["engine"]
    assert entry["file"] == "face_tiny.onnx" and entry["source_sha256"] == card["sha256"]
    assert entry["sha256"] == registry.sha256_file(tiny_face_models / "face_tiny.onnx")
    assert entry["max_abs_difference"] <= engine.PARITY_TOLERANCE
    registry.clear_cache()
    loaded = registry.get_model("face_tiny", directory=tiny_face_models)
    assert loaded.engine == "onnx"
    x = real_face_batch()[:6]
    assert np.abs(loaded.predict_raw(x) - loaded.keras_model.predict_on_batch(x)).max() <= 1e-5


def test_export_engine_rewrites_a_stale_entry_and_the_card_section(face_vgg_dir):
    from training import export_engine

    (face_vgg_dir / "face_vgg.md").write_text("# card\n\ntext\n")
    edit_card(face_vgg_dir, "face_vgg", lambda card: card.pop("engine"))
    (face_vgg_dir / "face_vgg.onnx").unlink()
    assert export_engine.export("face_vgg", face_vgg_dir) is True
    assert export_engine.export("face_vgg", face_vgg_dir) is False  # up to date now
    fresh = json.loads((face_vgg_dir / "face_vgg.json").read_text())
    assert fresh["engine"]["sha256"] == registry.sha256_file(face_vgg_dir / "face_vgg.onnx")
    text = (face_vgg_dir / "face_vgg.md").read_text()
    assert text.count("## Serving engine") == 1 and fresh["engine"]["sha256"] in text


SERVE_WITHOUT_TENSORFLOW = """
import json, sys
from pathlib import Path
from recognition.inference import faces, voice
media = Path("tests/media")
photo = faces.analyze_image((media / "12_angry_men.jpg").read_bytes())
clip = voice.analyze_audio((media / "speech" / "03-01-05-02-01-01-18.flac").read_bytes())
print(json.dumps({"faces": len(photo["faces"]), "speech": clip["speech"], "emotion": clip["emotion"],
                  "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules}))
"""


def test_a_serving_process_never_imports_tensorflow():
    env = {**os.environ, "INFERENCE_ENGINE": "onnx", "MODELS_DIR": str(SHIPPED)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    out = subprocess.run([sys.executable, "-c", SERVE_WITHOUT_TENSORFLOW], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["faces"] == 10 and result["speech"] is True and result["emotion"]
    assert result["tensorflow"] is False and result["keras"] is False


def test_classes_of_the_shipped_face_engine_are_the_cards():
    runner = engine.OnnxRunner(SHIPPED / "face_vgg.onnx", threads=1)
    out = runner.run(np.zeros((3, 48, 48, 1), np.float32))
    assert out.shape == (3, len(FACE_EMOTIONS)) and np.allclose(out.sum(1), 1, atol=1e-5)


def test_an_int8_file_serves_when_the_card_names_it_and_float32_can_be_asked_for(face_vgg_dir, monkeypatch):
    from training.quantize_engine import quantize

    x = real_face_batch()
    target = face_vgg_dir / "face_vgg.int8.onnx"
    quantize(face_vgg_dir / "face_vgg.onnx", target, x)
    edit_card(face_vgg_dir, "face_vgg", lambda card: card["engine"].update(int8={"file": target.name, "sha256": registry.sha256_file(target)}))
    monkeypatch.setenv("INFERENCE_ENGINE", "onnx")
    registry.clear_cache()
    int8 = registry.get_model("face_vgg", directory=face_vgg_dir)
    assert int8.engine == "onnx-int8"
    p8 = int8.predict_raw(x)
    monkeypatch.setenv("INFERENCE_PRECISION", "float32")
    registry.clear_cache()
    f32 = registry.get_model("face_vgg", directory=face_vgg_dir)
    assert f32.engine == "onnx"
    p32 = f32.predict_raw(x)
    assert (p8.argmax(1) == p32.argmax(1)).mean() >= 0.8 and float(np.abs(p8 - p32).mean()) < 0.03
    target.write_bytes(target.read_bytes()[:-10])  # altered: refused like any engine file
    monkeypatch.setenv("INFERENCE_PRECISION", "auto")
    registry.clear_cache()
    with pytest.raises(registry.ModelUnavailable, match="does not match the sha256"):
        registry.get_model("face_vgg", directory=face_vgg_dir)
