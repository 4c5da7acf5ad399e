"""Helpers both trainers (face and voice) use: mixup, and writing a served model and its card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def strip_optimizer(model):
    """A copy rebuilt from its config, without optimizer state (``clone_model`` of a compiled
    model kept it): the served file is a third of the checkpoint's size."""
    clean = model.__class__.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    return clean


def next_version(card_path: Path, base: str) -> str:
    """``base`` (the date), or ``base.N`` when the card being replaced already has that date, so
    two models trained on one day never share a version (results record name and version)."""
    try:
        previous = str(json.loads(Path(card_path).read_text()).get("version", ""))
    except (OSError, ValueError):
        return base
    if previous != base and not previous.startswith(base + "."):
        return base
    tail = previous[len(base) + 1 :]
    return f"{base}.{int(tail) + 1 if tail.isdigit() else 2}"


def mixup(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """mixup (Zhang et al. 2018): each example blended with a random partner, lambda ~ Beta(a, a),
    the example keeping the larger share; labels blended the same way."""
    lam = rng.beta(alpha, alpha, len(x)).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)
    partner = rng.permutation(len(x))
    shape = (-1,) + (1,) * (x.ndim - 1)
    x_mixed = lam.reshape(shape) * x + (1 - lam.reshape(shape)) * x[partner]
    y_mixed = lam[:, None] * y + (1 - lam[:, None]) * y[partner]
    return x_mixed.astype(np.float32), y_mixed.astype(np.float32)
