"""A video file -> faces tracked over time, voice on the sound track, and both fused per moment.
Three modules: ``video_decoding`` (decoding and sampling the frames), ``video_faces`` (faces per
frame, tracks and their summaries) and this one (the sound track, the fusion, the result).

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

import logging
import time
from typing import Any

from . import audio, config, fusion, registry, voice
from .errors import InvalidMedia
from .tracking import TRACK_IOU, FaceTracks, IoUTracker, Track, iou  # noqa: F401  (video.IoUTracker, video.iou)
from .video_decoding import (  # noqa: F401  (video.probe, video.decode_samples, as before)
    DEFAULT_SAMPLE_FPS,
    MAX_SAMPLE_FPS,
    Decoded,
    Progress,
    Sample,
    decode_samples,
    probe,
)
from .video_faces import (  # noqa: F401
    CLASSIFY_BATCH_FRAMES,
    TRACK_MAX_GAP_SECONDS,
    FaceTimeline,
    _track_summaries,
)

logger = logging.getLogger(__name__)


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
