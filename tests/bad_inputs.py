"""The bad-input corpus: hostile, broken and odd files generated in memory (nothing big is
committed), each with what the site must answer. Used by tests/test_bad_inputs.py, which sends
every case through the upload page, the REST API and (for pictures and sound) the live socket.

A case is either refused (an HTTP status and words the message must contain) or accepted with a
checked outcome (e.g. a photo with no face ends ``done`` with 0 faces; silence ends ``done`` with
``speech`` False). Builders are cached: each file is made once per test session.
"""

from __future__ import annotations

import functools
import io
import struct
import wave
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

MEDIA = Path(__file__).parent / "media"
SPEECH = MEDIA / "speech" / "03-01-03-02-01-01-18.flac"


# --- building blocks ------------------------------------------------------------------------


@functools.cache
def face_rgb(max_side: int = 640) -> Image.Image:
    """The real one-face test photo, downscaled (enough for detection, cheap to analyse)."""
    image = Image.open(MEDIA / "test_image.jpg").convert("RGB")
    image.thumbnail((max_side, max_side))
    return image


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


@functools.cache
def face_jpeg() -> bytes:
    return encode(face_rgb(), "JPEG", quality=85)


@functools.cache
def face_png() -> bytes:
    return encode(face_rgb(), "PNG")


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body))
    )


def png_claiming(width: int, height: int, rows: int = 1) -> bytes:
    """A small grey PNG whose header claims ``width`` x ``height`` (``rows`` rows of real zeros)."""
    raw = zlib.compress((b"\0" + b"\0" * min(width, 1 << 16)) * rows, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", raw)
        + png_chunk(b"IEND", b"")
    )


def png_real_bomb(side: int) -> bytes:
    """A genuinely decodable ``side`` x ``side`` grey PNG of zeros: megapixels in kilobytes."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    raw = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", raw)
        + png_chunk(b"IEND", b"")
    )


def gif_claiming(width: int, height: int) -> bytes:
    """A GIF whose logical screen and one image claim ``width`` x ``height`` with 1 pixel of data."""
    header = (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
        + b"\0\0\0\xff\xff\xff"
    )
    image = (
        b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    )
    return header + image + b";"


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real 8x8 JPEG with its SOF0 frame size patched to ``width`` x ``height``."""
    data = bytearray(encode(Image.new("RGB", (8, 8), (90, 90, 90)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    """A WebP (VP8X extended header) whose canvas claims ``width`` x ``height``."""
    vp8x = (
        b"VP8X"
        + struct.pack("<I", 10)
        + b"\0\0\0\0"
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little")
    )
    body = b"WEBP" + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def exif_rotated_jpeg() -> bytes:
    """The face photo stored lying on its side, with EXIF orientation 6 (rotate 90 CW to view)."""
    sideways = face_rgb().transpose(
        Image.Transpose.ROTATE_90
    )  # counter-clockwise on disk
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(sideways, "JPEG", quality=85, exif=exif.tobytes())


def sixteen_bit_png() -> bytes:
    grey = np.asarray(face_rgb().convert("L"), dtype=np.uint16) * 257
    image = Image.fromarray(grey.astype(np.uint16))
    assert image.mode == "I;16"
    return encode(image, "PNG")


def rgba_png() -> bytes:
    image = face_rgb().convert("RGBA")
    alpha = Image.new("L", image.size, 255)
    alpha.paste(0, (0, 0, image.width // 8, image.height // 8))  # a transparent corner
    image.putalpha(alpha)
    return encode(image, "PNG")


def animated_gif() -> bytes:
    frames = [face_rgb(320).convert("P"), Image.new("P", face_rgb(320).size, 3)]
    return encode(
        frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0
    )


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def corrupt_middle(data: bytes, seed: int = 7) -> bytes:
    """The file with a stretch in its middle overwritten by random bytes (header intact)."""
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    start = len(out) // 3
    out[start : start + len(out) // 3] = rng.integers(
        0, 256, len(out) // 3, dtype=np.uint8
    ).tobytes()
    return bytes(out)


def wav(samples: np.ndarray, rate: int = 16000) -> bytes:
    """16-bit mono WAV of float samples in [-1, 1]."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def wav_header(
    *,
    rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    fmt: int = 1,
    data_bytes: int,
) -> bytes:
    """A canonical 44-byte WAV header that states ``data_bytes`` of sound (true or not)."""
    block = channels * bits // 8
    return (
        b"RIFF" + struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF)) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, fmt, channels, rate, rate * block, block, bits)
        + b"data" + struct.pack("<I", min(data_bytes, 0xFFFFFFFF))
    )  # fmt: skip


def float_wav(samples: np.ndarray, rate: int = 16000) -> bytes:
    """32-bit float WAV (format 3) holding exactly these samples, NaN and infinities included."""
    body = samples.astype("<f4").tobytes()
    return wav_header(rate=rate, bits=32, fmt=3, data_bytes=len(body)) + body


@functools.cache
def speech_samples() -> np.ndarray:
    import soundfile

    samples, rate = soundfile.read(SPEECH, dtype="float32")
    assert rate == 16000
    return samples


def encoded_speech(fmt: str) -> bytes:
    from tests.media_convert import encode_audio

    return encode_audio(speech_samples(), 16000, fmt)


def tiny_mp4(seconds: float = 1.0) -> bytes:
    from tests.media_convert import video_mp4

    return video_mp4(seconds, with_audio=True)


def seconds(n: float, rate: int = 16000) -> int:
    return int(n * rate)


# --- the corpus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One input and what must come of it.

    ``status``/``words``: refused with this HTTP status and a message containing one of these
    words. ``outcome``: accepted; the finished analysis must satisfy this check (a name in
    test_bad_inputs.OUTCOMES). ``live``: how the live socket takes it ("frame", "audio") or None.
    """

    id: str
    build: Callable[[], bytes]
    name: str = "upload.jpg"
    status: int | None = None
    words: tuple[str, ...] = ()
    outcome: str | None = None
    live: str | None = None
    settings: dict = field(default_factory=dict)

    @functools.cached_property
    def data(self) -> bytes:
        return self.build()


def refuse(
    id: str,
    build,
    name: str,
    status: int,
    *words: str,
    live: str | None = None,
    **settings,
) -> Case:
    return Case(
        id, build, name, status=status, words=words, live=live, settings=settings
    )


def accept(
    id: str, build, name: str, outcome: str, *, live: str | None = None, **settings
) -> Case:
    return Case(id, build, name, outcome=outcome, live=live, settings=settings)


NOT_SUPPORTED = ("not supported",)
DAMAGED = ("damaged", "truncated", "unreadable", "no sound", "cannot be read")
TOO_LARGE = ("too large", "limit")
TOO_LONG = ("too long",)
JPEG_MAGIC = b"\xff\xd8\xff"
rng = np.random.default_rng(2024)
NOISE = (rng.normal(0, 0.3, seconds(3))).astype(np.float32)
RANDOM = bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()).replace(
    b"\xff", b"\xfe"
)

# fmt: off
CORPUS: list[Case] = [
    # empty, tiny and plain wrong types
    refuse("empty", lambda: b"", "photo.jpg", 400, "empty", live="frame"),
    refuse("one-byte", lambda: b"\xff", "photo.jpg", 415, *NOT_SUPPORTED, live="frame"),
    refuse("jpeg-magic-only", lambda: JPEG_MAGIC, "photo.jpg", 400, *DAMAGED, live="frame"),
    refuse("random-bytes", lambda: RANDOM, "photo.jpg", 415, *NOT_SUPPORTED, live="frame"),
    refuse("zeros", lambda: b"\0" * 10000, "song.wav", 415, *NOT_SUPPORTED, live="audio"),
    refuse("text-as-jpg", lambda: b"Hello, I am a text file pretending to be a photo.\n", "photo.jpg", 415, *NOT_SUPPORTED, live="frame"),
    refuse("html-as-png", lambda: b"<!doctype html><html><script>alert(document.cookie)</script></html>", "image.png", 415, *NOT_SUPPORTED, live="frame"),
    refuse("svg-script-as-jpg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>', "face.jpg", 415, *NOT_SUPPORTED, live="frame"),
    refuse("pdf-as-jpg", lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", "scan.jpg", 415, *NOT_SUPPORTED),
    refuse("zip-as-jpg", lambda: zip_bytes({"a.txt": b"hello" * 100}), "photos.jpg", 415, *NOT_SUPPORTED),
    refuse("exe-as-jpg", lambda: b"MZ\x90\x00\x03" + b"\0" * 58 + b"PE\0\0" + b"\0" * 200, "setup.jpg", 415, *NOT_SUPPORTED),
    refuse("php-as-jpg", lambda: b"<?php system($_GET['c']); ?>", "shell.php.jpg", 415, *NOT_SUPPORTED),
    refuse("tiff-photo", lambda: encode(face_rgb(64), "TIFF"), "photo.tif", 415, *NOT_SUPPORTED),
    refuse("ico", lambda: encode(face_rgb(64), "ICO"), "favicon.ico", 415, *NOT_SUPPORTED),
    refuse("html-behind-jpeg-magic", lambda: JPEG_MAGIC + b"\xe0<html><script>alert(1)</script></html>", "x.jpg", 400, *DAMAGED, live="frame"),
    # truncated and corrupt images
    refuse("jpeg-truncated-half", lambda: face_jpeg()[: len(face_jpeg()) // 2], "photo.jpg", 400, *DAMAGED, live="frame"),
    refuse("jpeg-truncated-header", lambda: face_jpeg()[:600], "photo.jpg", 400, *DAMAGED, live="frame"),
    refuse("png-truncated", lambda: face_png()[: len(face_png()) // 2], "photo.png", 400, *DAMAGED, live="frame"),
    refuse("png-bad-crc", lambda: corrupt_middle(face_png()), "photo.png", 400, *DAMAGED, live="frame"),
    refuse("png-magic-then-garbage", lambda: b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "photo.png", 400, *DAMAGED, live="frame"),
    refuse("gif-truncated", lambda: encode(face_rgb(320), "GIF")[:300], "photo.gif", 400, *DAMAGED),
    refuse("webp-truncated", lambda: encode(face_rgb(320), "WEBP")[:400], "photo.webp", 400, *DAMAGED, live="frame"),
    refuse("bmp-truncated", lambda: encode(face_rgb(320), "BMP")[:5000], "photo.bmp", 400, *DAMAGED),
    refuse("heic-truncated", lambda: _heic()[:500], "photo.heic", 400, *DAMAGED),
    refuse("jpeg-corrupt-middle", lambda: corrupt_middle(face_jpeg()), "photo.jpg", 400, *DAMAGED, live="frame"),
    # decompression bombs: huge declared pixel counts in tiny files
    refuse("png-bomb-header", lambda: png_claiming(100_000, 100_000), "bomb.png", 413, *TOO_LARGE, live="frame"),
    refuse("png-bomb-real-64mp", lambda: png_real_bomb(8000), "bomb.png", 413, *TOO_LARGE, live="frame"),
    refuse("gif-bomb-header", lambda: gif_claiming(65535, 65535), "bomb.gif", 413, *TOO_LARGE),
    refuse("jpeg-bomb-header", lambda: jpeg_claiming(65000, 65000), "bomb.jpg", 413, *TOO_LARGE, live="frame"),
    refuse("webp-bomb-header", lambda: webp_claiming(16000, 16000), "bomb.webp", 413, *TOO_LARGE, live="frame"),
    refuse("over-the-pixel-limit", lambda: encode(Image.new("L", (2000, 1001)), "PNG"), "big.png", 413, *TOO_LARGE, MAX_IMAGE_PIXELS=2_000_000),
    # odd but valid images: accepted, with the right outcome
    accept("no-face", lambda: encode(Image.new("RGB", (640, 480), (30, 120, 200)), "JPEG"), "sky.jpg", "no-faces", live="frame"),
    accept("noise-image", lambda: encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)), "PNG"), "noise.png", "no-faces", live="frame"),
    accept("tiny-1x1-png", lambda: encode(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG"), "dot.png", "no-faces", live="frame"),
    accept("tiny-1x1-jpeg", lambda: encode(Image.new("L", (1, 1), 128), "JPEG"), "dot.jpg", "no-faces", live="frame"),
    accept("strip-10000x1", lambda: encode(Image.new("L", (10000, 1), 200), "PNG"), "strip.png", "no-faces"),
    accept("huge-20mp-flat", lambda: encode(Image.new("L", (5000, 4000), 90), "PNG"), "huge.png", "no-faces"),
    accept("cmyk-jpeg", lambda: encode(face_rgb().convert("CMYK"), "JPEG", quality=90), "cmyk.jpg", "face"),
    accept("16-bit-png", sixteen_bit_png, "deep.png", "face", live="frame"),
    accept("rgba-png", rgba_png, "alpha.png", "face", live="frame"),
    accept("palette-png", lambda: encode(face_rgb().convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), "palette.png", "face", live="frame"),
    accept("grey-alpha-png", lambda: encode(face_rgb().convert("LA"), "PNG"), "la.png", "face"),
    accept("exif-rotated", exif_rotated_jpeg, "rotated.jpg", "face-upright"),
    accept("animated-gif", animated_gif, "anim.gif", "image-any"),
    accept("bmp-face", lambda: encode(face_rgb(), "BMP"), "face.bmp", "face"),
    # polyglots: the bytes decide, and what is stored is only ever served as that image
    accept("jpeg+zip-polyglot", lambda: face_jpeg() + zip_bytes({"evil.html": b"<script>alert(1)</script>"}), "face.jpg", "face-served-as-image", live="frame"),
    accept("gif-with-js-polyglot", lambda: encode(face_rgb(320), "GIF") + b"\n*/=alert(document.domain)//", "x.gif", "image-served-as-image"),
    accept("png-html-in-text-chunk", lambda: _png_with_text(b"<html><script>alert(1)</script></html>"), "x.html", "face-served-as-image", live="frame"),
    accept("jpeg-named-wav", face_jpeg, "song.wav", "face"),
    # audio: empty, truncated, corrupt, lying headers, long, silence, noise, non-speech
    refuse("wav-header-only", lambda: wav_header(data_bytes=0), "voice.wav", 400, *DAMAGED, live="audio"),
    refuse("wav-truncated-header", lambda: wav(speech_samples())[:30], "voice.wav", 400, *DAMAGED, live="audio"),
    refuse("wav-zero-rate", lambda: wav_header(rate=0, data_bytes=32000) + b"\0" * 32000, "voice.wav", 400, *DAMAGED, live="audio"),
    refuse("wav-zero-channels", lambda: wav_header(channels=0, data_bytes=32000) + b"\1" * 32000, "voice.wav", 400, *DAMAGED, live="audio"),
    refuse("flac-magic-garbage", lambda: b"fLaC" + RANDOM[:2000], "voice.flac", 400, *DAMAGED, live="audio"),
    refuse("flac-truncated", lambda: SPEECH.read_bytes()[:100], "voice.flac", 400, *DAMAGED, live="audio"),
    refuse("mp3-truncated", lambda: encoded_speech("mp3")[:300], "voice.mp3", 400, *DAMAGED, live="audio"),
    refuse("id3-tag-only", lambda: b"ID3\x04\0\0\0\0\0\x10" + b"\0" * 16, "voice.mp3", 400, *DAMAGED, live="audio"),
    refuse("ogg-magic-garbage", lambda: b"OggS" + RANDOM[:3000], "voice.ogg", 400, *DAMAGED, live="audio"),
    refuse("webm-magic-garbage", lambda: b"\x1a\x45\xdf\xa3" + RANDOM[:3000], "voice.webm", 400, *DAMAGED, live="audio"),
    refuse("m4a-ftyp-only", lambda: b"\0\0\0\x18ftypM4A \0\0\0\0M4A mp42" + b"\0" * 100, "voice.m4a", 400, *DAMAGED, live="audio"),
    # A header claiming 74 hours over 1 s of sound: measured from what decodes, not believed.
    accept("wav-declares-74-hours", lambda: wav_header(rate=8000, data_bytes=0xFFFFFFF0) + b"\0" * 16000, "long.wav", "no-speech", live="audio"),
    refuse("wav-real-6-minutes", lambda: wav(np.zeros(seconds(360, 8000), np.float32), 8000), "long.wav", 413, *TOO_LONG),
    accept("silence", lambda: wav(np.zeros(seconds(3), np.float32)), "quiet.wav", "no-speech", live="audio"),
    accept("white-noise", lambda: wav(NOISE), "noise.wav", "no-speech", live="audio"),
    accept("clicks", lambda: wav(_clicks()), "clicks.wav", "no-speech", live="audio"),
    accept("nan-float-wav", lambda: float_wav(np.array([np.nan, np.inf, -np.inf, 0.5] * seconds(1), np.float32)), "nan.wav", "audio-any", live="audio"),
    accept("speech-named-jpg", lambda: encoded_speech("wav"), "photo.jpg", "speech"),
    accept("wav-100-hz-rate", lambda: wav(np.sin(np.arange(300) / 3).astype(np.float32), 100), "slow.wav", "audio-any"),
    # video: broken containers are refused; a real clip follows the video feature's state
    refuse("mp4-truncated", lambda: tiny_mp4()[:700], "clip.mp4", 400, *DAMAGED),
    refuse("mp4-ftyp-only", lambda: b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2" + b"\0" * 64, "clip.mp4", 400, *DAMAGED),
    refuse("avi-garbage", lambda: b"RIFF\0\1\0\0AVI LIST" + RANDOM[:2000], "clip.avi", 415, "no sound or pictures"),
    accept("mp4-corrupt-middle", lambda: corrupt_middle(tiny_mp4()), "clip.mp4", "video-any"),
    accept("mp4-tiny-real", tiny_mp4, "clip.mp4", "video-any"),
]
# fmt: on


def _heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(face_rgb(320), "HEIF", quality=80)


def _png_with_text(text: bytes) -> bytes:
    data = face_png()
    end = data.index(b"IEND") - 4
    return data[:end] + png_chunk(b"tEXt", b"Comment\0" + text) + data[end:]


def _clicks() -> np.ndarray:
    """Sharp clicks every 100 ms on silence: loud but neither tonal nor speech."""
    samples = np.zeros(seconds(3), np.float32)
    samples[:: seconds(0.1)] = 0.9
    return samples


assert len({c.id for c in CORPUS}) == len(CORPUS), "case ids must be unique"
