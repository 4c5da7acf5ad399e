"""media.py: kinds from magic bytes (not names), limits, names, storage and serving rules."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from recognition.analyses import media
from recognition.analyses.media import MediaRejected
from tests.media_convert import (
    AUDIO_FORMATS,
    IMAGE_FORMATS,
    audio_as,
    image_as,
    video_mp4,
)


def inspect(data: bytes) -> media.Inspected:
    return media.inspect_upload(ContentFile(data), len(data))


@pytest.mark.parametrize("fmt", sorted(IMAGE_FORMATS))
def test_images_are_recognised_by_content(face_photo, fmt):
    found = inspect(image_as(face_photo, fmt))
    assert found.kind == "image"
    assert (found.width, found.height) == (1024, 768)
    # Upright JPEG renditions for lists and the result page, whatever the format (HEIC too).
    thumb = Image.open(io.BytesIO(found.renditions["thumb"]))
    assert thumb.format == "JPEG" and max(thumb.size) == media.THUMB_SIZE


@pytest.mark.parametrize("fmt", sorted(AUDIO_FORMATS))
def test_audio_is_recognised_and_measured(speech_clip, fmt):
    found = inspect(audio_as(speech_clip, fmt))
    assert found.kind == "audio"
    assert found.ext == AUDIO_FORMATS[fmt][2]
    assert found.duration == pytest.approx(3.77, abs=0.1)


def test_video_containers_are_video():
    found = inspect(video_mp4())
    assert (found.kind, found.ext, found.content_type) == ("video", "mp4", "video/mp4")
    assert (found.width, found.height) == (160, 120)


def test_audio_only_mp4_brand_is_audio(speech_clip):
    """An ISO ``isom`` file with only a sound track is a recording, not a video."""
    data = audio_as(speech_clip, "m4a").replace(b"ftypM4A ", b"ftypisom", 1)
    found = inspect(data)
    assert (found.kind, found.ext, found.content_type) == ("audio", "m4a", "audio/mp4")


def test_wav_renamed_as_jpeg_is_still_audio(speech_clip):
    """The name plays no part: the content decides."""
    assert media.sniff(audio_as(speech_clip, "wav")[:64]).kind == "audio"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (b"<html><script>alert(1)</script></html>", 415),
        (b"%PDF-1.7\n" + b"0" * 100, 415),
        (b"\xff\xd8\xff\xe0" + b"\0" * 200, 400),  # JPEG magic, no image
        (b"RIFF\x24\0\0\0WAVEfmt " + b"\0" * 40, 400),  # WAV header, no sound
        (b"fLaC" + b"\0" * 64, 400),
        (b"\x1a\x45\xdf\xa3" + b"\0" * 200, 400),  # EBML magic, garbage
    ],
)
def test_bad_content_is_refused_with_4xx(data, status):
    with pytest.raises(MediaRejected) as exc:
        inspect(data)
    assert exc.value.status == status
    assert exc.value.message


def test_truncated_image_is_refused(face_photo):
    with pytest.raises(MediaRejected) as exc:
        inspect(face_photo[: len(face_photo) // 2])
    assert exc.value.status == 400
    assert "truncated" in exc.value.message


def test_truncated_audio_keeps_only_whole_frames_or_is_refused(speech_clip):
    data = audio_as(speech_clip, "mp3")
    with pytest.raises(MediaRejected):
        inspect(data[:300])
    assert inspect(data[: len(data) // 2]).duration < 3.0  # measured from what decodes


def test_oversized_upload_is_413(settings):
    settings.MAX_UPLOAD_BYTES = 1000
    with pytest.raises(MediaRejected) as exc:
        inspect(b"\xff\xd8\xff" + b"\0" * 2000)
    assert exc.value.status == 413
    assert "too large" in exc.value.message


def png_bomb(width: int, height: int, *, rows: int | None = None) -> bytes:
    """A tiny PNG that claims width x height grey pixels (with ``rows`` rows of real data)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body))
        )

    row = b"\0" + b"\0" * width
    raw = zlib.compress(row * (height if rows is None else rows), 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", raw)
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_before_decoding(settings):
    settings.MAX_IMAGE_PIXELS = 1_000_000
    bomb = png_bomb(4000, 4000)  # 16 MP in ~16 KB
    assert len(bomb) < 100_000
    with pytest.raises(MediaRejected) as exc:
        inspect(bomb)
    assert exc.value.status == 413
    assert "4000×4000" in exc.value.message


def test_huge_claimed_dimensions_are_refused():
    """Beyond Pillow's own bomb limit the header alone is enough to refuse."""
    with pytest.raises(MediaRejected) as exc:
        inspect(png_bomb(30000, 30000, rows=2))
    assert exc.value.status == 413


def test_too_long_audio_is_413(settings, speech_clip):
    settings.MAX_AUDIO_SECONDS = 2
    with pytest.raises(MediaRejected) as exc:
        inspect(audio_as(speech_clip, "flac"))
    assert exc.value.status == 413
    assert "limit is 2 seconds" in exc.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("a\x00b\x1f\x7fc.png", "abc.png"),
        ("\u202eevil.gpj.exe", "evil.gpj.exe"),  # bidi override removed
        (b"caf\xe9.jpg", "caf\ufffd.jpg"),  # not UTF-8
        ("bad\udcff.wav", "bad?.wav"),  # lone surrogate
        ("", "upload"),
        ("...", "upload"),
        (None, "upload"),
    ],
)
def test_original_names_are_made_safe(raw, expected):
    assert media.safe_original_name(raw) == expected


def test_long_names_keep_their_extension():
    name = media.safe_original_name("x" * 1000 + ".jpeg")
    assert len(name) == 255 and name.endswith(".jpeg")
