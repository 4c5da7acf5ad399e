"""Video bytes -> the sampled frames: PyAV decodes the first video stream (rotation metadata
applied, so boxes match what a browser shows) and keeps one frame every 1 / ``sample_fps``
seconds: a frame is taken when its time reaches the next slot, within half a source frame.
``probe`` checks a file is a decodable video before it is stored. Part of ``video``, which says
what the whole analysis does."""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from .errors import InvalidMedia

logger = logging.getLogger("recognition.inference.video")  # the name the logs have always shown

DEFAULT_SAMPLE_FPS = 4.0
MAX_SAMPLE_FPS = 30.0
MAX_DECODE_ERRORS = 50
SHORT_BY_SECONDS = 0.5  # decoded video this much shorter than its header says -> a note
PROBE_MAX_PACKETS = 300

Progress = Callable[[float], None]


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
