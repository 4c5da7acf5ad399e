"""Real test videos made from the test photo and a speech clip (PyAV, in memory).

The camera slowly pans across tests/media/test_image.jpg while zooming in, so faces move and
change size between frames (what the tracker has to follow); the sound track is a real RAVDESS
speech clip. Used by tests/test_video.py and benchmarks/bench_video.py.
"""

from __future__ import annotations

import io
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tests.media_convert import read_pcm

MEDIA = Path(__file__).parent / "media"
PHOTO = MEDIA / "test_image.jpg"
# container -> (PyAV format, video codec, audio codec, audio rate)
CONTAINERS = {
    "mp4": ("mp4", "libx264", "aac", 16000),
    "mov": ("mov", "libx264", "aac", 16000),
    "webm": ("webm", "libvpx", "libopus", 48000),
}


def panning_frames(seconds: float, fps: int, size: tuple[int, int]) -> list[np.ndarray]:
    """RGB frames of a slow pan (left to right) and zoom (1.0 -> 1.25) over the test photo."""
    width, height = size
    photo = cv2.cvtColor(
        cv2.imread(str(PHOTO), cv2.IMREAD_REDUCED_COLOR_2), cv2.COLOR_BGR2RGB
    )
    ph, pw = photo.shape[:2]
    frames = []
    count = max(1, round(seconds * fps))
    for i in range(count):
        u = i / max(1, count - 1)
        zoom = 1.0 + 0.25 * u
        cw = int(pw * 0.8 / zoom)
        ch = int(cw * height / width)
        if ch > ph * 0.9:  # portrait frames: limited by the photo's height
            ch = int(ph * 0.9 / zoom)
            cw = int(ch * width / height)
        x = int((pw - cw) * (0.2 + 0.6 * u))
        y = (ph - ch) // 2
        frames.append(
            cv2.resize(
                photo[y : y + ch, x : x + cw], size, interpolation=cv2.INTER_LINEAR
            )
        )
    return frames


def make_video(
    *,
    seconds: float = 3.0,
    fps: int = 25,
    size: tuple[int, int] = (640, 480),
    speech: Path | None = MEDIA / "speech" / "03-01-05-02-01-01-18.flac",
    container: str = "mp4",
    faststart: bool = False,
    rotation: int = 0,
    live: bool = False,
) -> bytes:
    """A real video (panning over the photo, ``size`` as shown) with an optional real speech
    sound track. ``rotation``: stored sideways with a display rotation, as phones do;
    ``faststart``: the MP4 index before the data, as web-optimised files have it; ``live``: a
    WebM without duration or index, as browsers' MediaRecorder writes it."""
    args = (seconds, fps, size, speech, container, rotation)
    if not faststart:
        buf = io.BytesIO()
        _write(buf, {"live": "1"} if live else {}, *args)
        return buf.getvalue()
    # faststart moves the index to the front in a second pass, which needs a real file.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"clip.{container}"
        _write(str(path), {"movflags": "+faststart"}, *args)
        return path.read_bytes()


def _write(
    target: str | io.BytesIO,
    options: dict[str, str],
    seconds: float,
    fps: int,
    size: tuple[int, int],
    speech: Path | None,
    container: str,
    rotation: int,
) -> None:
    fmt, vcodec, acodec, arate = CONTAINERS[container]
    with av.open(target, mode="w", format=fmt, options=options) as out:
        video = out.add_stream(vcodec, rate=fps)
        video.width, video.height = size if rotation % 180 == 0 else size[::-1]
        video.pix_fmt = "yuv420p"
        if vcodec == "libx264":
            video.options = {"preset": "ultrafast", "crf": "23"}
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream(acodec, rate=arate, layout="mono") if speech else None
        for rgb in panning_frames(seconds, fps, size):
            # A phone stores the sensor's pixels and a display rotation that turns them upright.
            stored = (
                np.ascontiguousarray(np.rot90(rgb, k=-rotation // 90))
                if rotation
                else rgb
            )
            for packet in video.encode(
                av.VideoFrame.from_ndarray(stored, format="rgb24")
            ):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            signal, rate = read_pcm(speech)
            signal = signal[: int(seconds * rate)]
            pcm = (np.clip(signal, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = rate
            frame.time_base = Fraction(1, rate)
            frame.pts = 0
            resampler = av.AudioResampler(
                format=sound.codec_context.format.name, layout="mono", rate=arate
            )
            for resampled in resampler.resample(frame) + resampler.resample(None):
                for packet in sound.encode(resampled):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
