"""Model registry: which model serves each task, its card, and a process-wide loaded instance.

``models/registry.json`` names the served model per task; ``models/<name>.json`` is its card
(classes, version, metrics, sha256, temperature). Code reads names, versions and classes from
the cards, never from constants spread through the code.

A card with ``"kind": "ensemble"`` names ``members`` (each a model with its own card and sha256)
instead of a file: ``EnsembleModel`` averages their calibrated probabilities, optionally over the
inputs and their mirror images (``"tta": ["hflip"]``, faces) and 2-pixel shifts of them
(``"shift2"``), then applies the ensemble's own temperature. It answers the same calls as ``LoadedModel``, so every caller (pages, API, workers,
live, video, evaluation) serves an ensemble through the same code.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recognition.inference import config, engine
from recognition.inference.files import (
    sha256_file,  # registry.sha256_file for the trainers
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class ModelUnavailable(RuntimeError):
    """A model file or card is missing, unreadable or does not match its card."""


def models_dir() -> Path:
    """``config.models_dir``: the MODELS_DIR setting in the web layer, else the environment
    variable, else the repository's models/."""
    return Path(config.get().models_dir)


def served_name(task: str, directory: Path | None = None) -> str:
    """Name of the model that serves ``task`` ('face' or 'voice')."""
    path = (directory or models_dir()) / "registry.json"
    try:
        return json.loads(path.read_text())[task]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelUnavailable(f"no served {task} model named in {path}: {exc}") from exc


def load_card(name: str, directory: Path | None = None) -> dict[str, Any]:
    path = (directory or models_dir()) / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"model card {path} is missing or unreadable: {exc}") from exc


def write_card(card: dict[str, Any], directory: Path | None = None, markdown: str | None = None, *, export_engine: bool = True) -> Path:
    """Write ``<name>.json`` (and ``<name>.md`` when given) next to the model file. A card of one
    Keras network gets its serving engine file exported beside it first (``engine.export``, the
    card's ``engine`` entry), unless the one already there was made from this very file: every
    trainer that saves a model goes through here, so no served model lacks its engine file."""
    directory = directory or models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    if export_engine:
        refresh_engine(card, directory)
    path = directory / f"{card['name']}.json"
    path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    if markdown is not None:
        (directory / f"{card['name']}.md").write_text(markdown + engine_markdown(card))
    return path


def refresh_engine(card: dict[str, Any], directory: Path) -> bool:
    """Export the card's Keras file to ONNX when its ``engine`` entry is missing or stale; True
    when it exported. Cards of ensembles (no file of their own) are left alone."""
    file = card.get("file", "")
    if card.get("kind") == "ensemble" or not file.endswith(".keras") or not (directory / file).exists():
        return False
    keras_path = directory / file
    entry = card.get("engine") or {}
    if entry.get("source_sha256") == sha256_file(keras_path) and (directory / entry.get("file", "-")).exists():
        return False
    try:
        model = load_keras(keras_path)
    except ModelUnavailable:
        return False  # not a model: loading it later says so, with the reason
    card["engine"] = engine.export(model, keras_path)
    return True


def engine_markdown(card: dict[str, Any]) -> str:
    """The model card's "Serving engine" section ('' for a card without an engine file)."""
    entry = card.get("engine")
    if not entry:
        return ""
    text = (
        f"\n## Serving engine\nONNX Runtime serves `{entry['file']}` (opset {entry['opset']}), exported from "
        f"`{card['file']}` (sha256 `{entry['source_sha256']}`) when it was saved.\n"
        f"- **sha256**: `{entry['sha256']}`\n"
        f"- **Largest difference from Keras** on the export's probe batch: {entry['max_abs_difference']:.1e} "
        f"(the parity test holds real faces and clips to 1e-5)\n"
    )
    q = entry.get("int8")
    if q:
        text += (
            f"- **int8** (`{q['file']}`, sha256 `{q['sha256']}`, calibrated on {q['calibration']}; served unless "
            f"`INFERENCE_PRECISION=float32`): validation {q['validation_accuracy']:.4f} against {q['float_validation_accuracy']:.4f} "
            f"in float32, PublicTest {q['test_accuracy']:.4f} against {q['float_test_accuracy']:.4f}; "
            f"{q['ms_per_8_faces']} ms against {q['float_ms_per_8_faces']} ms per 8 faces on one thread; {q['rule']} "
            f"(`python -m training.quantize_engine {card['name']}`)\n"
        )
    return text


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrate softmax outputs: softmax(log p / T), computed stably; rows sum to 1."""
    logp = np.log(np.clip(probabilities, 1e-12, 1.0)) / float(temperature)
    logp -= logp.max(axis=-1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=-1, keepdims=True)


def engine_choice() -> str:
    """``INFERENCE_ENGINE``: ``onnx`` (default: ONNX Runtime where the card names an engine file,
    Keras otherwise) or ``keras`` (always Keras; comparisons and debugging). Where a card also
    names an int8 file (``training.quantize_engine``), that one serves unless
    ``INFERENCE_PRECISION=float32``."""
    choice = os.environ.get("INFERENCE_ENGINE", "onnx").strip().lower()
    return choice if choice in ("onnx", "keras") else "onnx"


@dataclass
class LoadedModel:
    """A served network with its card. ``predict`` is thread-safe and returns calibrated
    probabilities. It runs on ONNX Runtime (``runner``) when the card names an engine file, so a
    serving process never imports TensorFlow; ``keras_model`` is loaded on first use only
    (training, evaluation, the parity test, or a card without an engine file)."""

    name: str
    card: dict[str, Any]
    path: Path | None = None
    runner: Any = None
    _keras: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def classes(self) -> list[str]:
        return list(self.card["classes"])

    @property
    def version(self) -> str:
        return str(self.card.get("version", "0"))

    @property
    def engine(self) -> str:
        if self.runner is None:
            return "keras"
        return "onnx-int8" if self.runner.path.name.endswith(".int8.onnx") else "onnx"

    def info(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}

    @property
    def keras_model(self) -> Any:
        with self.lock:
            if self._keras is None:
                if self.path is None:
                    raise ModelUnavailable(f"{self.name}: no Keras file to load")
                self._keras = load_keras(self.path)
            return self._keras

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Batch -> (N, classes) calibrated probabilities."""
        return apply_temperature(self.predict_raw(x), self.temperature).astype(np.float32)

    @property
    def temperature(self) -> float:
        return float(self.card.get("temperature", 1.0))

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        """Batch -> (N, classes) uncalibrated softmax outputs (float64); for calibration checks.
        ONNX Runtime needs no lock and traces nothing; Keras' ``predict_on_batch`` (a compiled
        graph, ~10x faster than eager calls for small batches) traces one graph per new batch
        shape and is serialised by the lock."""
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float64)
        if self.runner is not None:
            return np.asarray(self.runner.run(x), dtype=np.float64)
        model = self.keras_model
        with self.lock:
            return np.asarray(model.predict_on_batch(x), dtype=np.float64)


TTA_SHIFT_PX = 2
TTA_KINDS = ("hflip", "shift2")


def _shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(N, H, W, C) images moved by whole pixels, edges repeated (cv2.BORDER_REPLICATE)."""
    rows = np.clip(np.arange(x.shape[1]) - dy, 0, x.shape[1] - 1)
    cols = np.clip(np.arange(x.shape[2]) - dx, 0, x.shape[2] - 1)
    return x[:, rows][:, :, cols]


def check_tta(tta: list[str] | tuple[str, ...], where: str = "") -> None:
    """ModelUnavailable for a test-time augmentation this code does not know."""
    unknown = set(tta) - set(TTA_KINDS)
    if unknown:
        raise ModelUnavailable(f"{where}unknown test-time augmentation {sorted(unknown)}; known: {list(TTA_KINDS)}")


def tta_views(x: np.ndarray, tta: list[str] | tuple[str, ...]) -> np.ndarray:
    """The batch of views averaged at test time, view-major: (V * N, H, W, C). ``hflip`` adds
    mirror images; ``shift2`` adds every view moved 2 px left, right, up and down."""
    check_tta(tta)
    views = [x, x[:, :, ::-1]] if "hflip" in tta else [x]
    if "shift2" in tta:
        d = TTA_SHIFT_PX
        views = views + [_shifted(v, dy, dx) for v in views for dy, dx in ((0, d), (0, -d), (d, 0), (-d, 0))]
    return np.concatenate(views)


@dataclass
class EnsembleModel:
    """Members' temperature-calibrated probabilities, averaged (over mirror images too with
    ``tta: ["hflip"]``); ``predict_raw`` is that average, ``predict`` applies the card's own
    temperature (fitted on validation data for the averaged output)."""

    name: str
    card: dict[str, Any]
    members: list[LoadedModel]

    classes = LoadedModel.classes
    version = LoadedModel.version
    temperature = LoadedModel.temperature
    predict = LoadedModel.predict

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "members": [m.info() for m in self.members]}

    @property
    def engine(self) -> str:
        return "+".join(sorted({m.engine for m in self.members}))

    @property
    def tta(self) -> list[str]:
        return list(self.card.get("tta", []))

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float64)
        batch = tta_views(x, self.tta) if self.tta else x
        total = np.zeros((len(batch), len(self.classes)), dtype=np.float64)
        pool = engine.side_pool() if len(self.members) > 1 and all(m.runner is not None for m in self.members) else None
        # the other networks run beside the first (engine.side_pool), summed in the same order
        outputs = [pool.submit(m.predict, batch) for m in self.members[1:]] if pool else []
        for i, member in enumerate(self.members):
            total += outputs[i - 1].result() if pool and i else member.predict(batch)
        mean = (total / len(self.members)).reshape(-1, len(x), len(self.classes)).mean(axis=0)
        return mean / mean.sum(axis=-1, keepdims=True)


_cache: dict[tuple[str, str], LoadedModel | EnsembleModel] = {}
_cache_lock = threading.Lock()


def load_keras(path: Path) -> Any:
    import keras

    from recognition.inference import layers  # noqa: F401  (registers the custom layers saved models name)

    if not path.exists():
        raise ModelUnavailable(f"model file {path} is missing")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a corrupt file
        raise ModelUnavailable(f"model file {path} could not be loaded: {exc}") from exc


def get_model(name: str | None = None, task: str = "face", directory: Path | None = None) -> LoadedModel | EnsembleModel:
    """The loaded model ``name`` (default: the one serving ``task``), loaded once per process."""
    directory = directory or models_dir()
    name = name or served_name(task, directory)
    with _cache_lock:
        return _load(name, directory, ())


def _load(name: str, directory: Path, parents: tuple[str, ...]) -> LoadedModel | EnsembleModel:
    """``get_model`` under the cache lock; ``parents`` guards against a card naming itself."""
    key = (str(directory), name)
    if key in _cache:
        return _cache[key]
    card = load_card(name, directory)
    if card.get("kind") == "ensemble":
        entries = card.get("members") or []
        if not entries or name in parents:
            raise ModelUnavailable(f"ensemble card {name} has no members or names itself")
        check_tta(card.get("tta", []), f"ensemble card {name}: ")
        members = []
        for entry in entries:
            member = _load(entry["name"], directory, (*parents, name))
            if not isinstance(member, LoadedModel):
                raise ModelUnavailable(f"ensemble {name}: member {entry['name']} is itself an ensemble")
            if entry.get("sha256") and entry["sha256"] != member.card.get("sha256"):
                raise ModelUnavailable(f"ensemble {name}: member {entry['name']} is not the file it was built with (sha256)")
            if member.classes != list(card["classes"]):
                raise ModelUnavailable(f"ensemble {name}: member {entry['name']} has other classes")
            members.append(member)
        _cache[key] = EnsembleModel(name=name, card=card, members=members)
        return _cache[key]
    path = directory / card.get("file", f"{name}.keras")
    expected = card.get("sha256")
    if expected and path.exists() and sha256_file(path) != expected:
        raise ModelUnavailable(f"model file {path} does not match the sha256 in its card")
    runner = _engine_runner(name, card, directory) if engine_choice() == "onnx" else None
    loaded = LoadedModel(name=name, card=card, path=path, runner=runner)
    if runner is None:
        loaded.keras_model  # noqa: B018 - load now: a missing or corrupt file fails here, not on a request
    _cache[key] = loaded
    return loaded


def _engine_runner(name: str, card: dict[str, Any], directory: Path) -> Any:
    """An ONNX Runtime runner for the card's engine file, or None when the card names none (the
    model is then served by Keras). A named file that is missing, altered (sha256) or made from
    another Keras file than the card's is ModelUnavailable: never a silent fallback."""
    entry = card.get("engine")
    if not entry:
        return None
    chosen = entry.get("int8") if entry.get("int8") and os.environ.get("INFERENCE_PRECISION", "auto") != "float32" else entry
    path = directory / chosen["file"]
    if not path.exists():
        raise ModelUnavailable(f"{name}: engine file {path} is missing (python -m training.export_engine {name})")
    if sha256_file(path) != chosen.get("sha256"):
        raise ModelUnavailable(f"{name}: engine file {path} does not match the sha256 in its card")
    if card.get("sha256") and entry.get("source_sha256") != card["sha256"]:
        raise ModelUnavailable(f"{name}: engine file {path} was exported from another {card.get('file')} (re-export it)")
    try:
        return engine.OnnxRunner(path)
    except engine.EngineUnavailable as exc:
        raise ModelUnavailable(str(exc)) from exc


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
