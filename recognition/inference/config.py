"""What the inference core needs from its host, in one object: no Django here.

The web process fills it from Django settings when the apps are ready (and again whenever a test
changes one of those settings: ``recognition/operations/inference_config.py``); trainers,
benchmarks and scripts that never start Django get the defaults below, each of which an
environment variable of the same name overrides (``MODELS_DIR``, ``MAX_IMAGE_PIXELS`` ...).

``observe`` is called with (model name, timings in ms) after every inference; the web layer points
it at its Prometheus histograms, elsewhere it does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def _env(name: str, default: Any, cast: Callable[[str], Any]) -> Any:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if cast is bool:
        return value.strip().lower() in ("1", "true", "yes", "on")
    return cast(value)


def _no_observer(model: str, timings_ms: Mapping[str, float]) -> None:
    return None


@dataclass(frozen=True)
class InferenceConfig:
    models_dir: Path = field(default_factory=lambda: Path(_env("MODELS_DIR", REPO_MODELS, str)))
    max_image_pixels: int = field(default_factory=lambda: _env("MAX_IMAGE_PIXELS", 40_000_000, int))
    max_upload_bytes: int = field(default_factory=lambda: _env("MAX_UPLOAD_BYTES", 25 * 1024 * 1024, int))
    max_audio_seconds: float = field(default_factory=lambda: _env("MAX_AUDIO_SECONDS", 300.0, float))
    face_align: bool = field(default_factory=lambda: _env("FACE_ALIGN", True, bool))
    face_align_refine: bool = field(default_factory=lambda: _env("FACE_ALIGN_REFINE", True, bool))
    observe: Callable[[str, Mapping[str, float]], None] = _no_observer


# Names of the fields, upper-cased, are the settings (and environment variables) they come from.
SETTING_NAMES = {f.name.upper(): f.name for f in fields(InferenceConfig) if f.name != "observe"}

_current = InferenceConfig()


def get() -> InferenceConfig:
    """The configuration in force (read it at call time: the host may replace it)."""
    return _current


def configure(**changes: Any) -> InferenceConfig:
    """Replace some values (``configure(models_dir=..., observe=...)``); returns the new config."""
    global _current
    if "models_dir" in changes:
        changes["models_dir"] = Path(changes["models_dir"])
    _current = replace(_current, **changes)
    return _current


def reset() -> InferenceConfig:
    """Back to the defaults (environment variables, else the built-in values)."""
    global _current
    _current = InferenceConfig()
    return _current
