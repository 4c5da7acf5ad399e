"""Schemathesis hooks for fuzzing this API (tests/test_api_fuzz.py loads them; by hand:
``SCHEMATHESIS_HOOKS=tests.schemathesis_hooks schemathesis run ...`` from the repository root).

What a schema cannot say, and nothing else:
- an upload is valid only when its bytes are a real photo, recording or video (the schema lists
  the formats in the part's ``contentType``): positive uploads get real small files of some of
  those formats, so "valid data accepted" is checked against files the site must accept;
- ``date_to`` must not be before ``date_from`` (OpenAPI 3.0 has no rule between two parameters;
  the descriptions state it and the 400 is documented): positive cases keep the two in order.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from datetime import date
from typing import Any

import schemathesis
from hypothesis import strategies as st
from PIL import Image
from schemathesis.generation import GenerationMode


def image_bytes(format_name: str) -> bytes:
    """A 64x48 photo-like gradient (no face: detection runs, the face model is not needed)."""
    image = Image.new("RGB", (64, 48))
    image.putdata([(x * 4, y * 5, (x + y) * 2) for y in range(48) for x in range(64)])
    out = io.BytesIO()
    image.save(out, format=format_name)
    return out.getvalue()


def wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A quiet 220 Hz tone: a real recording the voice pipeline decodes end to end."""
    samples = [
        int(300 * math.sin(2 * math.pi * 220 * i / rate))
        for i in range(int(seconds * rate))
    ]
    out = io.BytesIO()
    with wave.open(out, "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(rate)
        recording.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return out.getvalue()


UPLOAD_SAMPLES = {
    "image/png": image_bytes("PNG"),
    "image/jpeg": image_bytes("JPEG"),
    "audio/wav": wav_bytes(),
}
for media_type, sample in UPLOAD_SAMPLES.items():
    schemathesis.openapi.media_type(media_type, st.just(sample))


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """A positive list query with ``date_to`` before ``date_from`` gets the two swapped."""
    meta = getattr(case, "meta", None)
    if meta is not None and meta.generation.mode != GenerationMode.POSITIVE:
        return case
    query = case.query or {}
    first, last = _day(query.get("date_from")), _day(query.get("date_to"))
    if first and last and first > last:
        case.query = {
            **query,
            "date_from": query["date_to"],
            "date_to": query["date_from"],
        }
    return case
