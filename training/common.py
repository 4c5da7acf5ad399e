"""Helpers both trainers (face and voice) use when they write a served model and its card."""

from __future__ import annotations

import json
from pathlib import Path


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
