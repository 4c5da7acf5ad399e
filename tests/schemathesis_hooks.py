"""Schemathesis hooks for fuzzing this API (tests/test_api_fuzz.py loads them; by hand:
``SCHEMATHESIS_HOOKS=tests.schemathesis_hooks schemathesis run ...`` from the repository root).

What a schema cannot say, and nothing else:
- an upload is valid only when its bytes are a real photo, recording or video (the schema lists
  the formats in the part's ``contentType``): positive uploads get real small files of some of
  those formats, so "valid data accepted" is checked against files the site must accept;
- ``date_to`` must not be before ``date_from`` (OpenAPI 3.0 has no rule between two parameters;
  the descriptions state it and the 400 is documented): positive cases keep the two in order;
- a live session analysed on the device (``POST /api/v1/live-sessions/``) must name the served
  live model (a value of the site's registry, not of the schema), its probabilities must sum to
  1, its sample times must not go back or pass ``duration``, ``started`` must not be in the
  future, and it may hold no field the schema does not name: positive cases are made so (the
  descriptions state each rule and the 400 is documented).
"""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from datetime import UTC, date, datetime
from pathlib import Path
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


MODELS = Path(__file__).resolve().parents[1] / "models"
SESSION_KEYS, SAMPLE_KEYS, FACE_KEYS = {"model", "started", "duration", "samples"}, {"t", "faces"}, {"box", "probabilities", "too_small"}


def served_live_model() -> dict[str, str]:
    """The served live face model's name and version (models/registry.json and its card)."""
    name = json.loads((MODELS / "registry.json").read_text())["face_live"]
    return {"name": name, "version": str(json.loads((MODELS / f"{name}.json").read_text())["version"])}


def device_session(body: Any) -> Any:
    """A schema-valid on-device session made to keep the rules a schema cannot state."""
    if not isinstance(body, dict):
        return body
    body = {k: v for k, v in body.items() if k in SESSION_KEYS}
    body["model"] = served_live_model()
    samples = [{k: v for k, v in sample.items() if k in SAMPLE_KEYS} for sample in body.get("samples") or [] if isinstance(sample, dict)]
    samples.sort(key=lambda sample: sample.get("t", 0))
    for sample in samples:
        faces = []
        for face in sample.get("faces") or []:
            face = {k: v for k, v in face.items() if k in FACE_KEYS}
            total = sum(face["probabilities"])
            face["probabilities"] = [p / total for p in face["probabilities"]] if total > 0 else [1 / 7] * 7
            faces.append(face)
        sample["faces"] = faces
    body["samples"] = samples
    body["duration"] = max([body.get("duration", 0.0), *(sample.get("t", 0.0) for sample in samples)])
    started = body.get("started")
    try:
        if started is not None and datetime.fromisoformat(started) > datetime.now(UTC):
            body["started"] = "2000-01-01T00:00:00Z"
    except (TypeError, ValueError):
        pass
    return body


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Positive cases keep the rules above: a list query with ``date_to`` before ``date_from``
    gets the two swapped; an on-device session is made valid (``device_session``)."""
    meta = getattr(case, "meta", None)
    if meta is not None and meta.generation.mode != GenerationMode.POSITIVE:
        return case
    if case.operation.path == "/api/v1/live-sessions/" and case.method.upper() == "POST":
        case.body = device_session(case.body)
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
