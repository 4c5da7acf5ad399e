"""The /ws/live/ wire format (docs/websockets.md): a binary message is ``kind (1 byte) + seq
(uint32 big-endian) + payload``; kind 1 is a JPEG/PNG/WebP frame, kind 2 raw PCM (float32
little-endian, mono, 16 kHz), kind 3 a self-contained encoded audio clip. Text messages are JSON
control messages (``hello``, ``stop``, ``ping``) or the base64 fallbacks ``frame`` / ``audio``.
Limits per connection (settings, with defaults below): message size, messages per second, frame
pixels, audio seconds. Parsing only: nothing here decodes media or runs a model.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

HEADER = struct.Struct(">BI")
KIND_FRAME = 1
KIND_PCM = 2
KIND_AUDIO = 3
PCM_RATE = 16000
PCM_MAX_ABS = 4.0
MAX_SEQ = 2**32 - 1

class LiveError(Exception):
    """A message the socket cannot use; ``str(exc)`` is shown to the person, ``seq`` echoes it."""

    def __init__(
        self, message: str, *, seq: int | None = None, code: str = "invalid"
    ) -> None:
        super().__init__(message)
        self.seq = seq
        self.code = code


@dataclass(frozen=True)
class LiveLimits:
    """Per-connection caps. Daphne itself closes the socket (1009) past its own 1 MiB, so the
    message cap stays below that to answer with a readable error instead."""

    max_message_bytes: int = 512 * 1024
    max_messages_per_second: float = 60.0
    max_frame_pixels: int = 1920 * 1080
    max_audio_seconds: float = 5.0
    infer_max_width: int = 320
    resume_seconds: float = 60.0

    @classmethod
    def from_settings(cls) -> LiveLimits:
        defaults = cls()
        return cls(
            max_message_bytes=int(
                getattr(settings, "LIVE_MAX_MESSAGE_BYTES", defaults.max_message_bytes)
            ),
            max_messages_per_second=float(
                getattr(
                    settings,
                    "LIVE_MAX_MESSAGES_PER_SECOND",
                    defaults.max_messages_per_second,
                )
            ),
            max_frame_pixels=int(
                getattr(settings, "LIVE_MAX_FRAME_PIXELS", defaults.max_frame_pixels)
            ),
            max_audio_seconds=float(
                getattr(settings, "LIVE_MAX_AUDIO_SECONDS", defaults.max_audio_seconds)
            ),
            infer_max_width=int(
                getattr(settings, "LIVE_INFER_MAX_WIDTH", defaults.infer_max_width)
            ),
            resume_seconds=float(
                getattr(settings, "LIVE_RESUME_SECONDS", defaults.resume_seconds)
            ),
        )


# --- Parsing ---------------------------------------------------------------------------------


@dataclass
class Message:
    """One parsed client message: ``type`` is frame | pcm | audio | hello | stop | ping."""

    type: str
    seq: int | None = None
    payload: bytes = b""
    session: str | None = None
    received: float = field(default_factory=time.perf_counter)


def _seq(value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= MAX_SEQ
    ):
        raise LiveError("seq must be an integer from 0 to 2^32-1.")
    return value


def parse_binary(data: bytes, limits: LiveLimits) -> Message:
    """Binary message -> Message; raises LiveError for anything malformed or too large."""
    if len(data) > limits.max_message_bytes:
        raise LiveError(
            f"Message too large ({len(data)} bytes; the limit is {limits.max_message_bytes}).",
            code="too_large",
        )
    if len(data) <= HEADER.size:
        raise LiveError(
            "Binary message too short: expected a 5-byte header and a payload."
        )
    kind, seq = HEADER.unpack_from(data)
    payload = bytes(data[HEADER.size :])
    if kind == KIND_FRAME:
        return Message("frame", seq, payload)
    if kind == KIND_PCM:
        return Message("pcm", seq, payload)
    if kind == KIND_AUDIO:
        return Message("audio", seq, payload)
    raise LiveError(f"Unknown binary message kind {kind}.", seq=seq)


def _b64(value: Any, seq: int) -> bytes:
    if not isinstance(value, str) or not value:
        raise LiveError("Expected base64 data in 'data'.", seq=seq)
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise LiveError("The data is not valid base64.", seq=seq) from None


def parse_text(text: str, limits: LiveLimits) -> Message:
    """JSON text message -> Message; raises LiveError for anything malformed or too large."""
    if len(text) > limits.max_message_bytes * 4 // 3 + 1024:
        raise LiveError("Message too large.", code="too_large")
    try:
        data = json.loads(text)
    except (
        ValueError,
        RecursionError,
    ):  # deeply nested arrays ("[[[[...") overflow the parser
        raise LiveError("Messages must be JSON objects or binary frames.") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise LiveError("Messages must be JSON objects with a string 'type'.")
    kind = data["type"]
    if kind in ("stop", "ping"):
        return Message(kind)
    if kind == "hello":
        session = data.get("session")
        if session is not None and (
            not isinstance(session, str)
            or not 8 <= len(session) <= 64
            or not session.isascii()
        ):
            raise LiveError("session must be a string of 8 to 64 ASCII characters.")
        return Message("hello", session=session)
    if kind in ("frame", "audio", "pcm"):
        seq = _seq(data.get("seq"))
        payload = _b64(data.get("data"), seq)
        if len(payload) > limits.max_message_bytes:
            raise LiveError("Message too large.", seq=seq, code="too_large")
        return Message(kind, seq, payload)
    raise LiveError(f"Unknown message type {kind[:20]!r}.")
