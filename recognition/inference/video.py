"""A video file -> faces tracked over time, voice on the sound track, and both fused per moment.

Pictures: PyAV decodes the first video stream (rotation metadata applied, so boxes match what a
browser shows) and keeps one frame every 1 / ``sample_fps`` seconds (settings.VIDEO_SAMPLE_FPS):
a frame is taken when its time reaches the next slot, within half a source frame. Each kept frame
goes through the photo pipeline's steps (``faces.detect_with_landmarks``, ``faces.face_crops``,
``faces.classify_faces``; same detector, crops, model and labels as ``faces.analyze_image``), the
faces of ``CLASSIFY_BATCH_FRAMES`` frames classified in one model call, and ``IoUTracker`` links
boxes across frames so each person gets a track id: a box continues the unmatched track it overlaps most
(IoU >= ``TRACK_IOU``, the track's box moved on at its last velocity), tracks survive
``TRACK_MAX_GAP_SECONDS`` without a match.

Sound: the audio track is decoded to 16 kHz mono by ``audio.decode_audio`` and scored by
``voice.analyse_signal`` (3 s windows every 1.5 s, the speech rule), the same as an uploaded
recording. Each timeline moment takes the speech window that covers it and whose centre is
nearest; outside speech its ``voice`` is null. No audio track, an undecodable one or no voice
model -> faces only, with a note in ``notes``.

Fusion per moment and for the clip: ``fusion`` (rule and weights documented there).

Result (stored as the API's ``result``): ``width``, ``height`` (as displayed), ``duration``,
``sample_fps``, ``has_audio``, ``notes``, ``faces`` (one per track: ``track``, ``box`` (largest
seen), ``emotion``, ``confidence``, ``probabilities`` (mean over its samples), ``first``,
``last``, ``samples``), ``timeline`` [``{"t", "faces": [{track, box, emotion, confidence,
probabilities}], "voice": {emotion, confidence, probabilities, start, end} | null, "fused":
{emotion, confidence, probabilities, sources} | null}``], ``voice`` (the sound track's
``analyze_audio`` result or null), ``fused`` (``{emotion, confidence, probabilities, sources,
windows}`` or null), ``fusion`` (the weights used), ``model`` ({"face", "voice"}), ``timings``.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np


from . import audio, config, faces, fusion, registry, voice
from .errors import InvalidMedia
from .preprocessing import to_gray
from .tracking import TRACK_IOU, FaceTracks, IoUTracker, Track, iou  # noqa: F401  (video.IoUTracker, video.iou)

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE_FPS = 4.0
MAX_SAMPLE_FPS = 30.0
TRACK_MAX_GAP_SECONDS = 1.0
MAX_DECODE_ERRORS = 50
SHORT_BY_SECONDS = 0.5  # decoded video this much shorter than its header says -> a note
PROBE_MAX_PACKETS = 300
CLASSIFY_BATCH_FRAMES = (
    8  # sampled frames whose faces go through the face model in one call
)

Progress = Callable[[float], None]


# --- tracking ------------------------------------------------------------------------------


# IoUTracker, Track and iou live in tracking (live sessions use them too); named here as before.


# --- decoding ------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    bgr: np.ndarray


@dataclass
class Decoded:
    samples: list[Sample]
    width: int
    height: int
    duration: float
    has_audio: bool
    notes: list[str]
    decode_ms: float


def _open(data: bytes | IO[bytes]) -> Any:
    import av

    source = (
        io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    )
    try:
        return av.open(source, mode="r", metadata_errors="ignore")
    except Exception as exc:  # FFmpeg raises many error types for garbage
        raise InvalidMedia("The video could not be read; it may be damaged.") from exc


def _video_stream(container: Any) -> Any:
    import av

    for stream in container.streams.video:
        if stream.disposition & av.stream.Disposition.attached_pic:
            continue  # cover art, not video
        if stream.codec_context is not None:
            return stream
    raise InvalidMedia("The file holds no video track.")


def _frames(
    container: Any, stream: Any, notes: list[str]
) -> Iterator[tuple[Any, int | None]]:
    """(decoded frame, byte offset of its packet); damaged packets are skipped, a damaged rest
    of the file ends the video (with a note) once something decoded, like a browser plays a
    cut-off recording."""
    import av

    errors = 0
    try:
        for packet in container.demux(stream):
            position = (
                packet.pos if packet.pos is not None and packet.pos >= 0 else None
            )
            try:
                frames = [(frame, position) for frame in packet.decode()]
            except av.InvalidDataError:
                errors += 1
                if errors > MAX_DECODE_ERRORS:
                    notes.append(
                        "Part of the video is damaged; it was analysed up to there."
                    )
                    return
                continue
            yield from frames
    except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
        logger.info("video decoding stopped: %s", exc)
        notes.append(
            "The video ends early (damaged or cut off); it was analysed up to there."
        )


def probe(data: bytes | IO[bytes]) -> None:
    """Cheap upload check: the file opens, has a video track and its first frame decodes
    (at most ``PROBE_MAX_PACKETS`` packets are read). Raises InvalidMedia otherwise."""
    import av

    container = _open(data)
    with container:
        stream = _video_stream(container)
        try:
            for count, packet in enumerate(container.demux(stream)):
                if count >= PROBE_MAX_PACKETS:
                    break
                try:
                    if packet.decode():
                        return
                except av.InvalidDataError:
                    continue
        except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
            logger.info("video probe failed: %s", exc)
    raise InvalidMedia("The video is damaged: none of its pictures could be decoded.")


def _upright(frame: Any) -> np.ndarray:
    """The frame as BGR pixels the way players show it (display-matrix rotation applied)."""
    bgr = frame.to_ndarray(format="bgr24")
    quarter_turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return (
        np.ascontiguousarray(np.rot90(bgr, k=quarter_turns)) if quarter_turns else bgr
    )


def decode_samples(
    data: bytes,
    *,
    sample_fps: float,
    max_seconds: float,
    max_pixels: int,
    progress: Progress | None = None,
    on_sample: Callable[[Sample], None] | None = None,
) -> Decoded:
    """Open and check the video, then decode one frame per 1 / ``sample_fps`` s.

    ``on_sample`` receives each kept frame as it is decoded (so frames need not pile up in
    memory); ``progress`` gets the fraction of the video decoded. Raises InvalidMedia for
    unreadable files, no video track, frames over ``max_pixels`` or video over ``max_seconds``.
    """
    started = time.perf_counter()
    notes: list[str] = []
    size = max(1, len(data))
    container = _open(data)
    with container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        if ctx.width and ctx.height and ctx.width * ctx.height > max_pixels:
            raise InvalidMedia(
                f"The video frame is too large ({ctx.width}×{ctx.height}); the limit is "
                f"{max_pixels} pixels per frame."
            )
        stated = None
        if stream.duration and stream.time_base:
            stated = float(stream.duration * stream.time_base)
        elif container.duration:
            stated = container.duration / 1_000_000
        if stated is not None and stated > max_seconds + 0.5:
            raise InvalidMedia(
                f"The video is too long ({stated:.0f} s); the limit is {max_seconds:.0f} seconds."
            )
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        tolerance = 0.5 / max(rate, 1.0)
        has_audio = bool(container.streams.audio)
        samples: list[Sample] = []
        first: float | None = None
        last_t = 0.0
        next_slot = 0
        width = height = 0
        for index, (frame, position) in enumerate(_frames(container, stream, notes)):
            raw = frame.time
            if raw is None:
                raw = index / rate
            if first is None:
                first = raw
            t = max(0.0, raw - first)
            last_t = max(last_t, t + 1.0 / rate)
            if t > max_seconds + 0.5:
                raise InvalidMedia(
                    f"The video is longer than the limit of {max_seconds:.0f} seconds."
                )
            if t + tolerance < next_slot / sample_fps:
                continue
            bgr = _upright(frame)
            if bgr.shape[0] * bgr.shape[1] > max_pixels:
                raise InvalidMedia(
                    f"The video frame is too large ({bgr.shape[1]}×{bgr.shape[0]}); the limit is "
                    f"{max_pixels} pixels per frame."
                )
            height, width = bgr.shape[:2]
            sample = Sample(round(t, 3), bgr)
            next_slot = math.floor((t + tolerance) * sample_fps) + 1
            if on_sample is not None:
                on_sample(sample)
            else:
                samples.append(sample)
            if progress is not None and stated:
                progress(min(1.0, t / stated))
            elif (
                progress is not None and position is not None
            ):  # no duration (live WebM)
                progress(min(1.0, position / size))
        if first is None:
            raise InvalidMedia("The video could not be decoded; it may be damaged.")
        if stated and last_t < stated - SHORT_BY_SECONDS and not notes:
            notes.append(
                f"The video stops at {last_t:.1f} s although it should last {stated:.1f} s "
                "(cut off?); it was analysed up to there."
            )
    return Decoded(
        samples=samples,
        width=width,
        height=height,
        duration=round(last_t, 3),
        has_audio=has_audio,
        notes=notes,
        decode_ms=(time.perf_counter() - started) * 1000,
    )


# --- sound ---------------------------------------------------------------------------------


def analyse_soundtrack(
    data: bytes, *, max_seconds: float, notes: list[str]
) -> dict[str, Any] | None:
    """The sound track's voice result, or None (with a note) when it cannot be had."""
    try:
        signal = audio.decode_audio(data, max_seconds=max_seconds)
    except InvalidMedia as exc:
        logger.info("sound track not analysed: %s", exc)
        notes.append("The sound track could not be decoded; only faces were analysed.")
        return None
    try:
        model = registry.get_model(task="voice")
    except registry.ModelUnavailable:
        logger.exception("voice model unavailable for a video")
        notes.append("The voice model is not available; only faces were analysed.")
        return None
    result = voice.analyse_signal(signal, model)
    if not result["speech"]:
        notes.append("No speech was heard in the sound track.")
    return result


def voice_at(t: float, windows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The speech window covering ``t`` whose centre is nearest (None outside speech)."""
    covering = [
        w
        for w in windows
        if w.get("emotion") and w["start"] - 1e-6 <= t <= w["end"] + 1e-6
    ]
    if not covering:
        return None
    w = min(covering, key=lambda w: abs((w["start"] + w["end"]) / 2 - t))
    return {
        "emotion": w["emotion"],
        "confidence": w["confidence"],
        "probabilities": w["probabilities"],
        "start": w["start"],
        "end": w["end"],
    }


# --- the whole analysis --------------------------------------------------------------------


@dataclass
class FaceTimeline:
    """Faces per sampled frame, tracked, with classification batched over ``batch_frames``
    frames: one model call per batch instead of per frame (benchmarks/bench_video.py: the
    per-call overhead of the Keras model is most of the cost of a frame's few faces)."""

    classes: list[str]
    model_name: str
    tracks: FaceTracks
    batch_frames: int = CLASSIFY_BATCH_FRAMES
    points: list[dict[str, Any]] = field(default_factory=list)
    pending: list[tuple[float, list[list[int]], list[int], list[np.ndarray]]] = field(
        default_factory=list
    )
    elapsed_ms: float = 0.0
    detect_ms: float = 0.0  # of elapsed_ms: detection and crops; the rest is classification

    def add(self, sample: Sample) -> None:
        """Detect and crop the faces of one sampled frame (classified with its batch)."""
        t0 = time.perf_counter()
        detections = faces.detect_in_frame(sample.bgr, self.tracks)
        if len(detections) > faces.MAX_FACES:  # the detector's surest, as for photos
            detections = sorted(detections, key=lambda d: -d[1])[: faces.MAX_FACES]
        gray = to_gray(sample.bgr)
        boxes = [box for box, _, _ in detections]
        # Tracked as sampled, so a tilted face's refined alignment follows its track.
        ids, crops = faces.tracked_face_crops(gray, detections, self.tracks)
        self.pending.append((sample.t, boxes, ids, crops))
        self.detect_ms += (time.perf_counter() - t0) * 1000
        self.elapsed_ms += (time.perf_counter() - t0) * 1000
        if len(self.pending) >= self.batch_frames:
            self.flush()

    def flush(self) -> None:
        """Classify the pending frames' faces in one call and append them to ``points``."""
        if not self.pending:
            return
        t0 = time.perf_counter()
        crops = [crop for _, _, _, frame_crops in self.pending for crop in frame_crops]
        rows = faces.classify_faces(crops, model=self.model_name) if crops else []
        at = 0
        for t, boxes, ids, frame_crops in self.pending:
            found = rows[at : at + len(frame_crops)]
            at += len(frame_crops)
            self.points.append(
                {
                    "t": t,
                    "faces": [
                        self._entry(track, box, row)
                        for track, box, row in zip(ids, boxes, found, strict=True)
                    ],
                }
            )
        self.pending.clear()
        self.elapsed_ms += (time.perf_counter() - t0) * 1000

    def _entry(self, track: int, box: list[int], row: np.ndarray) -> dict[str, Any]:
        """One face as ``faces.analyze_image`` gives it, plus its track (4 decimals keep a long
        video's JSON small)."""
        best = int(np.argmax(row))
        return {
            "track": track,
            "box": [int(v) for v in box],
            "emotion": self.classes[best],
            "confidence": round(float(row[best]), 4),
            "probabilities": {
                c: round(float(p), 4) for c, p in zip(self.classes, row, strict=True)
            },
        }


def _track_summaries(
    timeline: list[dict[str, Any]], classes: list[str]
) -> list[dict[str, Any]]:
    """One entry per track: mean probabilities over its samples, its largest box, first/last t."""
    tracks: dict[int, dict[str, Any]] = {}
    for point in timeline:
        for face in point["faces"]:
            entry = tracks.setdefault(
                face["track"],
                {
                    "track": face["track"],
                    "box": face["box"],
                    "first": point["t"],
                    "sum": np.zeros(len(classes)),
                    "samples": 0,
                },
            )
            entry["sum"] += [face["probabilities"].get(c, 0.0) for c in classes]
            entry["samples"] += 1
            entry["last"] = point["t"]
            if face["box"][2] * face["box"][3] > entry["box"][2] * entry["box"][3]:
                entry["box"] = face["box"]
    out = []
    for entry in tracks.values():
        mean = entry.pop("sum") / entry["samples"]
        best = int(np.argmax(mean))
        out.append(
            {
                "track": entry["track"],
                "box": entry["box"],
                "emotion": classes[best],
                "confidence": round(float(mean[best]), 4),
                "probabilities": {
                    c: round(float(p), 4) for c, p in zip(classes, mean, strict=True)
                },
                "first": entry["first"],
                "last": entry["last"],
                "samples": entry["samples"],
            }
        )
    return sorted(out, key=lambda e: e["track"])


def analyze_video(
    data: bytes,
    *,
    sample_fps: float = DEFAULT_SAMPLE_FPS,
    max_seconds: float = 120.0,
    max_pixels: int = 1920 * 1080,
    progress: Progress | None = None,
    batch_frames: int = CLASSIFY_BATCH_FRAMES,
    model: str | None = None,
    tracks: FaceTracks | None = None,
) -> dict[str, Any]:
    """Bytes of a video file -> the video result described in the module docstring.

    ``model`` names the face model (default: the served one); ``tracks`` replaces the fresh
    tracks a video starts with (benchmarks compare alignment memories with it).

    Raises InvalidMedia (unreadable, no video track, too long, too large) and
    ``registry.ModelUnavailable`` when the face model cannot be loaded; a missing voice model
    only drops the voice part (noted).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)) or not data:
        raise InvalidMedia("The video file is empty.")
    data = bytes(data)
    sample_fps = float(min(max(sample_fps, 0.1), MAX_SAMPLE_FPS))
    face_model = registry.get_model(model, task="face")
    # Every sample gets every turned detector view (a video is an upload: it pays for them;
    # live frames get them on a schedule instead).
    if tracks is None:
        tracks = FaceTracks(IoUTracker(max_gap=max(1, round(TRACK_MAX_GAP_SECONDS * sample_fps))), turn_every=1)
    face_timeline = FaceTimeline(
        face_model.classes, face_model.name, tracks, batch_frames=max(1, batch_frames)
    )

    def frames_progress(fraction: float) -> None:
        if progress is not None:
            progress(0.9 * fraction)

    decoded = decode_samples(
        data,
        sample_fps=sample_fps,
        max_seconds=max_seconds,
        max_pixels=max_pixels,
        progress=frames_progress,
        on_sample=face_timeline.add,
    )
    face_timeline.flush()
    timeline = face_timeline.points
    face_ms = face_timeline.elapsed_ms
    notes = decoded.notes
    t0 = time.perf_counter()
    soundtrack = None
    if decoded.has_audio:
        soundtrack = analyse_soundtrack(data, max_seconds=max_seconds, notes=notes)
    else:
        notes.append("This video has no sound track; only faces were analysed.")
    voice_ms = (time.perf_counter() - t0) * 1000
    if progress is not None:
        progress(0.95)

    # The whole video's face stages, one observation each (its sound track was measured by voice).
    config.get().observe(
        face_model.name,
        {
            "decode_ms": decoded.decode_ms - face_ms,
            "detect_ms": face_timeline.detect_ms,
            "classify_ms": face_ms - face_timeline.detect_ms,
        },
    )
    voice_card = None
    if soundtrack is not None:
        voice_card = registry.get_model(task="voice").card
    weights = fusion.weights(face_model.card, voice_card)
    windows = (soundtrack or {}).get("windows") or []
    for point in timeline:
        point["voice"] = voice_at(point["t"], windows)
        point["fused"] = fusion.fuse(
            fusion.faces_distribution(point["faces"]),
            fusion.to_common((point["voice"] or {}).get("probabilities")),
            weights,
        )
    if timeline and not any(point["faces"] for point in timeline):
        notes.append("No faces were found in the sampled frames.")
    models = {"face": face_model.info()}
    if soundtrack is not None:
        models["voice"] = soundtrack["model"]
    return {
        "width": decoded.width,
        "height": decoded.height,
        "duration": decoded.duration,
        "sample_fps": sample_fps,
        "has_audio": decoded.has_audio,
        "notes": notes,
        "faces": _track_summaries(timeline, face_model.classes),
        "timeline": timeline,
        "voice": soundtrack,
        "fused": fusion.overall([point["fused"] for point in timeline]),
        "fusion": weights,
        "model": models,
        "timings": {
            "decode_ms": round(decoded.decode_ms - face_ms, 1),
            "faces_ms": round(face_ms, 1),
            "voice_ms": round(voice_ms, 1),
        },
    }
