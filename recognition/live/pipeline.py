"""Decoding and inference for live messages: a frame through the face model (with the
connection's face tracks), PCM or an encoded clip through the voice model. Inference runs in a
small process-wide thread pool (ONNX Runtime and OpenCV release the GIL); docs/websockets.md has
the measurements behind that choice.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from django.conf import settings

from recognition.inference.errors import InvalidMedia
from recognition.inference.tracking import FaceTracks
from recognition.live.protocol import (
    PCM_MAX_ABS,
    PCM_RATE,
    LiveLimits,
)

log = logging.getLogger("recognition.live")  # the name the logs have always shown

_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


def _is_image(payload: bytes) -> bool:
    return payload.startswith(_IMAGE_MAGIC) or (
        payload[:4] == b"RIFF" and payload[8:12] == b"WEBP"
    )


def decode_frame(
    payload: bytes, limits: LiveLimits
) -> tuple[np.ndarray, int, int, float]:
    """Frame bytes -> (BGR image for inference, original width, height, scale to original).

    The header is read first (Pillow, no decode) so a small file claiming huge dimensions is
    refused before any pixel is allocated; JPEGs wider than twice ``infer_max_width`` are decoded
    straight at reduced size (libjpeg's DCT scaling, much cheaper than decode-then-resize)."""
    import cv2
    from PIL import Image, UnidentifiedImageError

    if not _is_image(payload):
        raise InvalidMedia("A frame must be a JPEG, PNG or WebP image.")
    try:
        import io

        with Image.open(io.BytesIO(payload)) as header:
            width, height = header.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise InvalidMedia("The frame could not be read as an image.") from None
    if width < 1 or height < 1 or width * height > limits.max_frame_pixels:
        raise InvalidMedia(
            f"Frame of {width}x{height} pixels is larger than the limit ({limits.max_frame_pixels} pixels)."
        )
    buffer = np.frombuffer(payload, np.uint8)
    flag = cv2.IMREAD_COLOR
    if payload.startswith(b"\xff\xd8") and limits.infer_max_width:
        if width >= 4 * limits.infer_max_width:
            flag = cv2.IMREAD_REDUCED_COLOR_4
        elif width >= 2 * limits.infer_max_width:
            flag = cv2.IMREAD_REDUCED_COLOR_2
    image = cv2.imdecode(buffer, flag)
    if image is None:
        raise InvalidMedia("The frame could not be decoded.")
    if limits.infer_max_width and image.shape[1] > limits.infer_max_width:
        new_h = max(1, round(image.shape[0] * limits.infer_max_width / image.shape[1]))
        image = cv2.resize(
            image, (limits.infer_max_width, new_h), interpolation=cv2.INTER_AREA
        )
    return image, width, height, width / image.shape[1]


def analyze_frame(payload: bytes, limits: LiveLimits, *, tracks: FaceTracks | None = None) -> dict[str, Any]:
    """Frame bytes -> the reply body: faces in the frame's own pixel coordinates and timings.
    ``tracks``: the session's faces so far (a tilted face's alignment is not looked for again
    while its tilt holds; ``tracking.FaceTracks``).

    Raises InvalidMedia for unusable frames and ModelUnavailable when no face model is served."""
    from recognition.inference import faces

    started = time.perf_counter()
    image, width, height, scale = decode_frame(payload, limits)
    decoded = time.perf_counter()
    analysis = faces.analyze_image(
        image, model=faces.live_model_name(), decode_ms=(decoded - started) * 1000, tracks=tracks
    )
    timings = dict(analysis.get("timings") or {})
    out_faces = []
    for face in analysis["faces"]:
        x, y, w, h = face["box"]
        box = [round(x * scale), round(y * scale), round(w * scale), round(h * scale)]
        out_faces.append(
            {
                "box": box,
                "too_small": bool(face.get("too_small")),
                "emotion": face["emotion"],
                "confidence": round(float(face["confidence"]), 4),
                "probabilities": {
                    k: round(float(v), 4) for k, v in face["probabilities"].items()
                },
            }
        )
    return {
        "width": width,
        "height": height,
        "faces": out_faces,
        "model": analysis.get("model"),
        "timings": timings,
    }


def decode_pcm(payload: bytes, limits: LiveLimits) -> np.ndarray:
    """Raw float32 LE mono 16 kHz bytes -> samples in [-1, 1]; refuses odd sizes, NaN and long chunks."""
    if len(payload) % 4:
        raise InvalidMedia("PCM audio must be float32 samples (a multiple of 4 bytes).")
    samples = np.frombuffer(payload, dtype="<f4").astype(np.float32)
    if samples.size < PCM_RATE // 10:
        raise InvalidMedia("The audio chunk is too short (under 0.1 s).")
    if samples.size > limits.max_audio_seconds * PCM_RATE:
        raise InvalidMedia(
            f"An audio chunk may last at most {limits.max_audio_seconds:g} s."
        )
    # Web Audio gives [-1, 1] (a little beyond after processing); anything else (NaN, huge values:
    # an image or a file sent as kind 2) is the wrong kind of data, not loud audio.
    if not np.isfinite(samples).all() or float(np.abs(samples).max()) > PCM_MAX_ABS:
        raise InvalidMedia("Invalid audio chunk: expected float32 PCM samples in [-1, 1].")
    return np.clip(samples, -1.0, 1.0)


def analyze_voice(kind: str, payload: bytes, limits: LiveLimits) -> dict[str, Any]:
    """PCM or an encoded clip -> {emotion, confidence, probabilities, speech, duration, model}."""
    from recognition.inference import voice

    data: bytes | np.ndarray = decode_pcm(payload, limits) if kind == "pcm" else payload
    started = time.perf_counter()
    result = voice.analyze_audio(data, max_seconds=limits.max_audio_seconds)
    return {
        "emotion": result.get("emotion"),
        "confidence": None
        if result.get("confidence") is None
        else round(float(result["confidence"]), 4),
        "probabilities": {
            k: round(float(v), 4)
            for k, v in (result.get("probabilities") or {}).items()
        },
        "speech": bool(result.get("speech")),
        "duration": round(float(result.get("duration") or 0.0), 3),
        "model": result.get("model"),
        "voice_ms": round((time.perf_counter() - started) * 1000, 2),
    }


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_warmed = threading.Event()


def executor() -> ThreadPoolExecutor:
    """The process-wide inference pool (LIVE_INFERENCE_THREADS, default 2 = this machine's cores)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            threads = int(getattr(settings, "LIVE_INFERENCE_THREADS", 2))
            _executor = ThreadPoolExecutor(
                max_workers=max(1, threads), thread_name_prefix="live-infer"
            )
        return _executor


def warm_up() -> None:
    """Load the face model and run one tiny inference so the first live frame is not the slow one."""
    if _warmed.is_set():
        return
    try:
        from recognition.inference import faces
        from recognition.operations import metrics

        with metrics.not_recorded():
            faces.analyze_image(np.zeros((120, 160, 3), np.uint8), model=faces.live_model_name())
        _warmed.set()
    except Exception as exc:  # noqa: BLE001 - a missing model is reported per frame, not here
        log.warning("live warm-up failed: %s", exc)
