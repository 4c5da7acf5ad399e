"""A voice clip of a training set: its file, its label (index into VOICE_EMOTIONS) and its actor
(0 for clips from corrections exports). Its own module so that ``voice`` and ``extra_data`` both
use it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Clip:
    path: Path
    label: int
    actor: int
