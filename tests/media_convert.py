"""Make test files in other formats from the real test photo and speech clips (Pillow, PyAV).

Used by the upload tests so every format goes through the site with real content.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

IMAGE_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "heic": "HEIF",
    "gif": "GIF",
}
# format -> (container, codec, file extension)
AUDIO_FORMATS = {
    "wav": ("wav", "pcm_s16le", "wav"),
    "mp3": ("mp3", "libmp3lame", "mp3"),
    "m4a": ("ipod", "aac", "m4a"),
    "ogg": ("ogg", "libopus", "ogg"),
    "flac": ("flac", "flac", "flac"),
    "webm": ("webm", "libopus", "webm"),
}


def image_as(photo: bytes, fmt: str, *, max_side: int | None = 1024) -> bytes:
    """The photo re-encoded as ``fmt`` (jpeg, png, webp, heic, gif), optionally downscaled."""
    if fmt == "heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    if max_side:
        image.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    image.save(
        buf,
        IMAGE_FORMATS[fmt],
        **({"quality": 90} if fmt in {"jpeg", "webp", "heic"} else {}),
    )
    return buf.getvalue()


def read_pcm(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate of a speech clip."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        chunks = [
            f.to_ndarray().reshape(-1).astype(np.float32)
            for f in container.decode(stream)
        ]
    signal = np.concatenate(chunks)
    if signal.dtype != np.float32 or np.abs(signal).max() > 1.5:
        signal = signal / 32768.0
    return signal.astype(np.float32), rate


def encode_audio(signal: np.ndarray, rate: int, fmt: str) -> bytes:
    """Encode mono float samples in ``fmt`` (wav, mp3, m4a, ogg, flac, webm) in memory."""
    container_fmt, codec, _ = AUDIO_FORMATS[fmt]
    out_rate = 48000 if codec == "libopus" else rate
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_fmt) as container:
        stream = container.add_stream(codec, rate=out_rate, layout="mono")
        resampler = av.AudioResampler(
            format=stream.codec_context.format.name, layout="mono", rate=out_rate
        )
        pcm = (np.clip(signal, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        frame.pts = 0
        for resampled in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(resampled):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def audio_as(path: Path, fmt: str) -> bytes:
    """A real speech clip re-encoded as ``fmt``."""
    signal, rate = read_pcm(path)
    return encode_audio(signal, rate, fmt)


def video_mp4(
    seconds: float = 1.0, *, with_audio: bool = True, size: tuple[int, int] = (160, 120)
) -> bytes:
    """A tiny real MP4 (H.264 + optional AAC) for the 'video not supported yet' checks."""
    buf = io.BytesIO()
    fps = 10
    with av.open(buf, mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        audio = (
            container.add_stream("aac", rate=16000, layout="mono")
            if with_audio
            else None
        )
        for i in range(int(seconds * fps)):
            img = np.full((size[1], size[0], 3), (i * 20) % 255, dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio is not None:
            t = np.arange(int(16000 * seconds)) / 16000
            pcm = (
                (0.3 * np.sin(2 * np.pi * 220 * t) * 32767)
                .astype(np.int16)
                .reshape(1, -1)
            )
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = 16000
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=16000)
            for resampled in resampler.resample(frame) + resampler.resample(None):
                for packet in audio.encode(resampled):
                    container.mux(packet)
            for packet in audio.encode(None):
                container.mux(packet)
    return buf.getvalue()
