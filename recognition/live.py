"""Live sessions: the service behind the /ws/live/ socket (the consumer only parses and replies).

- Wire format: a binary message is ``kind (1 byte) + seq (uint32 big-endian) + payload``; kind 1 is
  a JPEG/PNG/WebP frame, kind 2 raw PCM (float32 little-endian, mono, 16 kHz), kind 3 a
  self-contained encoded audio clip. Text messages are JSON control messages (``hello``, ``stop``,
  ``ping``) or the base64 fallbacks ``frame`` / ``audio``.
- Limits per connection (settings, with defaults below): message size, messages per second,
  frame pixels, audio seconds.
- ``LatestWins``: one item in progress and at most one waiting; a newer item replaces the waiting
  one, so latency never grows with load and nothing queues.
- Inference runs in a small process-wide thread pool (TensorFlow and OpenCV release the GIL);
  see README "## Live" for the measurements behind that choice.
- ``SessionRecorder`` aggregates what a connection saw; ``save_live_session`` stores it as an
  ``Analysis(kind="live")``. A dropped socket parks the recorder for a grace period so a
  reconnect resumes the same session; if nobody comes back it is saved as it is.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import struct
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.utils import timezone

from recognition.inference.errors import InvalidMedia
from recognition.inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS
from recognition.inference.tracking import FaceTracks

log = logging.getLogger(__name__)

HEADER = struct.Struct(">BI")
KIND_FRAME = 1
KIND_PCM = 2
KIND_AUDIO = 3
PCM_RATE = 16000
PCM_MAX_ABS = 4.0
MAX_SEQ = 2**32 - 1
# Timeline points are one-second buckets; past this many the resolution halves (two merge).
MAX_TIMELINE_POINTS = 600
MAX_VOICE_POINTS = 600


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


# --- Decoding and inference ------------------------------------------------------------------

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
        from recognition import metrics
        from recognition.inference import faces

        with metrics.not_recorded():
            faces.analyze_image(np.zeros((120, 160, 3), np.uint8), model=faces.live_model_name())
        _warmed.set()
    except Exception as exc:  # noqa: BLE001 - a missing model is reported per frame, not here
        log.warning("live warm-up failed: %s", exc)


# --- Flow control ----------------------------------------------------------------------------


class RateLimiter:
    """Token bucket: ``rate`` messages per second with a burst of one second's worth."""

    def __init__(
        self, rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.tokens = rate
        self.clock = clock
        self.updated = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class LatestWins:
    """Runs ``process(item)`` for one item at a time; while busy, only the newest item waits.

    ``submit`` returns the item it displaced (never processed), so the caller can tell the client
    that frame was dropped. Must be created inside a running event loop."""

    def __init__(self, process: Callable[[Any], Awaitable[None]]) -> None:
        self._process = process
        self._pending: Any = None
        self._wake = asyncio.Event()
        self.busy = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, item: Any) -> Any:
        dropped, self._pending = self._pending, item
        self._wake.set()
        return dropped

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            item, self._pending = self._pending, None
            if item is None:
                continue
            self.busy = True
            try:
                await self._process(item)
            except asyncio.CancelledError:
                raise
            except (
                Exception
            ):  # the processor answers errors itself; this is a last resort
                log.exception("live worker failed")
            finally:
                self.busy = False

    async def aclose(self) -> None:
        self._pending = None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


# --- Aggregation -----------------------------------------------------------------------------


def _largest(faces: list[dict]) -> dict | None:
    """The largest face that is not too small to judge (None when there is none)."""
    judged = [f for f in faces if not f.get("too_small")]
    return max(judged, key=lambda f: f["box"][2] * f["box"][3]) if judged else None


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


@dataclass
class SessionRecorder:
    """What one live session saw: frame counts, per-label tallies and a one-second timeline.

    Memory stays bounded for any session length: the timeline halves its resolution when full."""

    started_at: datetime = field(default_factory=timezone.now)
    started: float = field(default_factory=time.monotonic)
    frames: int = 0
    frames_with_faces: int = 0
    dropped: int = 0
    faces_max: int = 0
    labels: Counter = field(default_factory=Counter)
    prob_sums: dict[str, float] = field(default_factory=dict)
    face_count: int = 0
    bucket_seconds: float = 1.0
    timeline: list[dict] = field(default_factory=list)
    voice_chunks: int = 0
    voice_speech: int = 0
    voice_labels: Counter = field(default_factory=Counter)
    voice_timeline: list[dict] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    saved_id: int | None = None

    @property
    def empty(self) -> bool:
        return self.frames == 0 and self.voice_chunks == 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def add_frame(self, reply: dict[str, Any]) -> None:
        faces = reply.get("faces") or []
        self.frames += 1
        if reply.get("model"):
            self.models["face"] = reply["model"]
        if len(self.server_ms) < 5000 and reply.get("server_ms") is not None:
            self.server_ms.append(float(reply["server_ms"]))
        self.faces_max = max(self.faces_max, len(faces))
        if faces:
            self.frames_with_faces += 1
        for face in faces:
            self.face_count += 1
            if face.get("too_small"):
                continue  # counted as a face, but its label is not a reading
            self.labels[face["emotion"]] += 1
            for label, p in face["probabilities"].items():
                self.prob_sums[label] = self.prob_sums.get(label, 0.0) + float(p)
        self._add_point(_largest(faces), len(faces))

    def _add_point(self, face: dict | None, count: int) -> None:
        t = math.floor(self.elapsed() / self.bucket_seconds) * self.bucket_seconds
        if not self.timeline or self.timeline[-1]["t"] != round(t, 3):
            self.timeline.append({"t": round(t, 3), "n": 0, "faces": 0, "sums": {}})
        point = self.timeline[-1]
        point["faces"] = max(point["faces"], count)
        if face is not None:
            point["n"] += 1
            for label, p in face["probabilities"].items():
                point["sums"][label] = point["sums"].get(label, 0.0) + float(p)
        if len(self.timeline) > MAX_TIMELINE_POINTS:
            self._halve_timeline()

    def _halve_timeline(self) -> None:
        self.bucket_seconds *= 2
        merged: list[dict] = []
        for point in self.timeline:
            t = math.floor(point["t"] / self.bucket_seconds) * self.bucket_seconds
            if merged and merged[-1]["t"] == t:
                last = merged[-1]
                last["n"] += point["n"]
                last["faces"] = max(last["faces"], point["faces"])
                for label, s in point["sums"].items():
                    last["sums"][label] = last["sums"].get(label, 0.0) + s
            else:
                merged.append(
                    {
                        "t": t,
                        "n": point["n"],
                        "faces": point["faces"],
                        "sums": dict(point["sums"]),
                    }
                )
        self.timeline = merged

    def add_voice(self, reply: dict[str, Any]) -> None:
        self.voice_chunks += 1
        if reply.get("model"):
            self.models["voice"] = reply["model"]
        if reply.get("speech") and reply.get("emotion"):
            self.voice_speech += 1
            self.voice_labels[reply["emotion"]] += 1
        if len(self.voice_timeline) < MAX_VOICE_POINTS:
            self.voice_timeline.append(
                {
                    "t": round(self.elapsed(), 2),
                    "emotion": reply.get("emotion"),
                    "confidence": reply.get("confidence"),
                    "speech": bool(reply.get("speech")),
                    "probabilities": reply.get("probabilities") or {},
                }
            )

    def summary(self) -> dict[str, Any]:
        """The session as the ``result`` JSON of a live Analysis (plus models and timings)."""
        total = sum(self.labels.values())
        order = [
            label
            for label in FACE_EMOTIONS
            if label in self.labels or label in self.prob_sums
        ]
        order += sorted(set(self.labels) - set(order))
        distribution = (
            {label: round(self.labels[label] / total, 4) for label in order}
            if total
            else {}
        )
        probabilities = (
            {
                label: round(self.prob_sums.get(label, 0.0) / self.face_count, 4)
                for label in order
            }
            if self.face_count
            else {}
        )
        emotion = (
            max(
                distribution, key=lambda k: (distribution[k], probabilities.get(k, 0.0))
            )
            if distribution
            else None
        )
        timeline = []
        for point in self.timeline:
            entry: dict[str, Any] = {
                "t": point["t"],
                "faces": point["faces"],
                "emotion": None,
                "confidence": None,
            }
            if point["n"]:
                means = {k: s / point["n"] for k, s in point["sums"].items()}
                top = max(means, key=means.__getitem__)
                entry.update(emotion=top, confidence=round(means[top], 4))
            timeline.append(entry)
        voice = None
        if self.voice_chunks:
            vtotal = sum(self.voice_labels.values())
            vorder = [label for label in VOICE_EMOTIONS if label in self.voice_labels]
            vorder += sorted(set(self.voice_labels) - set(vorder))
            vdist = (
                {label: round(self.voice_labels[label] / vtotal, 4) for label in vorder}
                if vtotal
                else {}
            )
            voice = {
                "chunks": self.voice_chunks,
                "speech_chunks": self.voice_speech,
                "emotion": max(vdist, key=vdist.__getitem__) if vdist else None,
                "distribution": vdist,
                "timeline": self.voice_timeline,
            }
        return {
            "started": self.started_at.isoformat(),
            "duration": round(self.elapsed(), 2),
            "frames": self.frames,
            "frames_with_faces": self.frames_with_faces,
            "dropped": self.dropped,
            "faces_max": self.faces_max,
            "emotion": emotion,
            "confidence": probabilities.get(emotion) if emotion else None,
            "distribution": distribution,
            "probabilities": probabilities,
            "timeline_step": self.bucket_seconds,
            "timeline": timeline,
            "voice": voice,
            "models": dict(self.models),
            "server_ms": {
                "p50": _percentile(self.server_ms, 50),
                "p95": _percentile(self.server_ms, 95),
            },
        }


# --- Saving ----------------------------------------------------------------------------------

_SUMMARY_NUMBERS = ("duration", "frames", "frames_with_faces", "dropped", "faces_max")


def save_live_session(*, owner, summary: dict[str, Any]):
    """Store a finished live session as ``Analysis(kind="live", status="done")`` owned by ``owner``.

    ``summary`` is ``SessionRecorder.summary()``; the headline emotion is the most frequent face
    label and its confidence the mean probability of that label. Raises ValueError for a summary
    that is not shaped like one (it is never partially saved). Announced on the owner's group
    (``analysis.update``) like every other analysis."""
    from recognition.models import Analysis

    for key in _SUMMARY_NUMBERS:
        value = summary.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(
                f"live summary field {key!r} must be a non-negative number"
            )
    if not isinstance(summary.get("distribution"), dict) or not isinstance(
        summary.get("timeline"), list
    ):
        raise ValueError("live summary needs a distribution and a timeline")  # noqa: TRY004
    result = {
        k: v for k, v in summary.items() if k not in ("models", "server_ms", "started")
    }
    emotion = summary.get("emotion") or ""
    confidence = summary.get("confidence")
    finished = timezone.now()
    try:
        started = datetime.fromisoformat(summary["started"])
    except (KeyError, TypeError, ValueError):
        started = finished - timedelta(seconds=float(summary["duration"]))
    analysis = Analysis.objects.create(
        owner=owner,
        kind=Analysis.Kind.LIVE,
        status=Analysis.Status.DONE,
        original_name=f"Live session {timezone.localtime(started):%Y-%m-%d %H:%M}",
        progress=100,
        emotion=emotion if isinstance(emotion, str) else "",
        confidence=float(confidence) if isinstance(confidence, (int, float)) else None,
        face_count=int(summary["faces_max"]),
        result=result,
        models_used=summary.get("models") or {},
        timings={
            "server_ms": summary.get("server_ms") or {},
            "duration_s": summary["duration"],
        },
        started=started,
        finished=finished,
    )
    from recognition import metrics, services

    metrics.count_analysis(Analysis.Kind.LIVE, Analysis.Status.DONE)
    services.notify(analysis)  # open history/dashboard pages update like for uploads
    return analysis


# --- Sessions that outlive a socket ----------------------------------------------------------


class ParkedSessions:
    """Recorders of dropped sockets, keyed by (user id, client session id), for a grace period.

    A reconnect with the same id within ``resume_seconds`` takes the recorder back; otherwise
    ``on_expire`` (saving it) runs. Per process: a reconnect that lands on another process starts
    a new session and the parked one is saved when its grace period ends."""

    def __init__(self) -> None:
        self._items: dict[
            tuple[int, str], tuple[SessionRecorder, asyncio.TimerHandle]
        ] = {}

    def park(
        self,
        key: tuple[int, str],
        recorder: SessionRecorder,
        delay: float,
        on_expire: Callable[[SessionRecorder], Awaitable[None]],
    ) -> None:
        loop = asyncio.get_running_loop()
        self.take(key)

        def expire() -> None:
            item = self._items.pop(key, None)
            if item is not None:
                loop.create_task(on_expire(item[0]))

        self._items[key] = (recorder, loop.call_later(delay, expire))

    def take(self, key: tuple[int, str]) -> SessionRecorder | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        item[1].cancel()
        return item[0]

    def __len__(self) -> int:
        return len(self._items)


parked = ParkedSessions()


# --- Channel-layer groups --------------------------------------------------------------------


def live_group(user_id: int) -> str:
    """Group of one person's live sockets: signing out closes them all (any process)."""
    return f"live-user-{user_id}"


@receiver(user_logged_out)
def close_live_sockets_on_logout(sender, request, user, **kwargs) -> None:
    """A signed-out session must stop streaming at once, not when the socket happens to drop."""
    if user is None or get_channel_layer() is None:
        return
    try:
        async_to_sync(get_channel_layer().group_send)(
            live_group(user.pk), {"type": "live.close", "code": 4401}
        )
    except Exception as exc:  # noqa: BLE001 - a layer outage must not break signing out
        log.warning("could not close live sockets of user %s: %s", user.pk, exc)
