"""Uploaded media: sniffing the kind from magic bytes, limits, per-user storage and serving.

Why one module over 400 lines: one set of rules for a stored file, from the first bytes to the
ranged response, so the pages, the API, the services and retention cannot disagree.

Everything that touches an uploaded file before or after analysis lives here, so the page view,
the API and the services share one set of rules. The kind comes from the content, never from the
name or the browser's content type. Refusals raise :class:`MediaRejected` with a message for a
person and an HTTP status (400 damaged, 413 too large, 415 unsupported).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from PIL import Image, ImageOps

from recognition.inference.images import sniff_image_format

if TYPE_CHECKING:
    from recognition.analyses.models import Analysis

logger = logging.getLogger("recognition.media")  # the name the logs have always shown

try:  # HEIC/HEIF photos (iPhones); optional so a missing wheel only disables that format.
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - installed from requirements.txt
    HEIF_SUPPORTED = False

IMAGE, AUDIO, VIDEO = "image", "audio", "video"
THUMB_SIZE = 320
PREVIEW_SIZE = 2048
MAX_NAME_LENGTH = 255


class MediaRejected(Exception):
    """An upload the site will not accept; ``message`` is for people, ``status`` the HTTP code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes say: the kind, a canonical extension and content type."""

    kind: str
    ext: str
    content_type: str
    container: bool = False  # needs PyAV to tell audio from video and to check it


@dataclass
class Inspected:
    """A checked upload: what it is, and facts found while checking it (pixels, seconds)."""

    kind: str
    ext: str
    content_type: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    renditions: dict[str, bytes] = field(default_factory=dict)


# --- names ---------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe_original_name(name: str | bytes | None) -> str:
    """A display-only version of a client's file name: no path, no control or invalid characters,
    at most 255 characters with the extension kept. Never used to build a storage path."""
    if name is None:
        return "upload"
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    name = (
        str(name).encode("utf-8", "replace").decode("utf-8")
    )  # lone surrogates -> '?'
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(
        c for c in name if unicodedata.category(c) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    )
    name = _CONTROL.sub("", name).strip().strip(".").strip()
    if not name:
        return "upload"
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_NAME_LENGTH - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME_LENGTH]
    return name


# --- sniffing ------------------------------------------------------------------------------

_M4A_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
# Still-image formats as the face core's sniffer names them -> (extension, content type).
_IMAGE_TYPES = {
    "jpeg": ("jpg", "image/jpeg"),
    "png": ("png", "image/png"),
    "webp": ("webp", "image/webp"),
    "gif": ("gif", "image/gif"),
    "bmp": ("bmp", "image/bmp"),
    "heif": ("heic", "image/heic"),
    "avif": ("avif", "image/avif"),
}


def sniff(head: bytes) -> Sniffed | None:
    """Kind of a file from its first bytes (64 are enough), or None when it is not one we take.

    Containers that can hold either sound or pictures (MP4/MOV, Matroska/WebM, Ogg) are marked
    ``container``: :func:`inspect_upload` opens them with PyAV to decide audio or video.
    """
    image_format = sniff_image_format(head)
    if image_format in _IMAGE_TYPES:
        return Sniffed(IMAGE, *_IMAGE_TYPES[image_format])
    if head[4:8] == b"ftyp":  # ISO-BMFF that is not a still image: sound or film
        if head[8:12] in _M4A_BRANDS:
            return Sniffed(AUDIO, "m4a", "audio/mp4", container=True)
        if head[8:12] == b"qt  ":
            return Sniffed(VIDEO, "mov", "video/quicktime", container=True)
        return Sniffed(VIDEO, "mp4", "video/mp4", container=True)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed(AUDIO, "wav", "audio/wav")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Sniffed(VIDEO, "avi", "video/x-msvideo", container=True)
    if head[:4] == b"fLaC":
        return Sniffed(AUDIO, "flac", "audio/flac")
    if head[:4] == b"OggS":
        return Sniffed(AUDIO, "ogg", "audio/ogg", container=True)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        if b"webm" in head[:64]:
            return Sniffed(AUDIO, "webm", "audio/webm", container=True)
        return Sniffed(AUDIO, "mka", "audio/x-matroska", container=True)
    if head[:3] == b"ID3":
        return Sniffed(AUDIO, "mp3", "audio/mpeg")
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return Sniffed(AUDIO, "aac", "audio/aac")  # ADTS AAC (layer bits 00)
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return Sniffed(AUDIO, "mp3", "audio/mpeg")  # MPEG audio frame sync, layer I-III
    return None


_VIDEO_TYPES = {
    "mp4": ("mp4", "video/mp4"),
    "m4a": ("mp4", "video/mp4"),
    "mov": ("mov", "video/quicktime"),
    "webm": ("webm", "video/webm"),
    "mka": ("mkv", "video/x-matroska"),
    "ogg": ("ogv", "video/ogg"),
    "avi": ("avi", "video/x-msvideo"),
}
_AUDIO_TYPES = {"mp4": ("m4a", "audio/mp4"), "mov": ("m4a", "audio/mp4")}
# The sound formats sniff() names (it returns them inline).
_SOUND_CONTENT_TYPES = ("audio/wav", "audio/flac", "audio/ogg", "audio/webm", "audio/x-matroska",
                        "audio/mpeg", "audio/aac", "audio/mp4")  # fmt: skip
# Every content type an accepted upload is stored, and served back, with (the API schema lists them).
UPLOAD_CONTENT_TYPES = tuple(
    sorted(
        {content_type for _, content_type in _IMAGE_TYPES.values()}
        | set(_SOUND_CONTENT_TYPES)
        | {content_type for _, content_type in _VIDEO_TYPES.values()}
    )
)


# --- inspection ----------------------------------------------------------------------------


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB"


def check_size(size: int) -> None:
    if size <= 0:
        raise MediaRejected("The file is empty.", 400)
    if size > settings.MAX_UPLOAD_BYTES:
        raise MediaRejected(
            f"The file is too large ({size / (1024 * 1024):.1f} MB); the limit is {_mb(settings.MAX_UPLOAD_BYTES)}.",
            413,
        )


def _inspect_image(fh: IO[bytes], sniffed: Sniffed) -> Inspected:
    """Open and fully decode an image (catching truncation), refusing decompression bombs first."""
    if sniffed.ext in {"heic"} and not HEIF_SUPPORTED:  # pragma: no cover
        raise MediaRejected("HEIC photos are not supported on this server.", 415)
    fh.seek(0)
    limit = settings.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fh)
            width, height = image.size
            if width * height > limit:
                raise MediaRejected(
                    f"The image is too large ({width}×{height} pixels); the limit is "
                    f"{limit / 1e6:.0f} megapixels.",
                    413,
                )
            image.load()
            image = ImageOps.exif_transpose(image)
            renditions = _renditions(image)
    except MediaRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRejected(
            f"The image is too large; the limit is {limit / 1e6:.0f} megapixels.", 413
        ) from None
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        MemoryError,
        Image.UnidentifiedImageError,
    ) as exc:
        logger.info("image rejected: %s", exc)
        raise MediaRejected(
            "The image is damaged or truncated and cannot be read.", 400
        ) from None
    return Inspected(
        IMAGE,
        sniffed.ext,
        sniffed.content_type,
        width=width,
        height=height,
        renditions=renditions,
    )


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB version of any Pillow image (palette, alpha, grey, CMYK), alpha flattened on white."""
    if image.mode in ("RGBA", "LA") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        # 16/32-bit grey: Pillow's convert("RGB") clips every value above 255 to white, so a
        # 16-bit photo became a blank white image (no faces, white previews). Scale it to 8 bits
        # the way the inference core does.
        import numpy as np

        from recognition.inference.images import _to_uint8

        return Image.fromarray(_to_uint8(np.asarray(image))).convert("RGB")
    return image.convert("RGB")


def _renditions(image: Image.Image) -> dict[str, bytes]:
    """Small JPEGs for lists (thumb) and the result page (preview), upright (EXIF applied), so
    every browser shows them, HEIC included, and face boxes line up with what is shown."""
    rgb = to_rgb(image)
    out: dict[str, bytes] = {}
    for variant, size in (("preview", PREVIEW_SIZE), ("thumb", THUMB_SIZE)):
        copy = rgb.copy()
        copy.thumbnail(
            (size, size),
            Image.Resampling.LANCZOS
            if variant == "thumb"
            else Image.Resampling.BILINEAR,
        )
        buf = io.BytesIO()
        copy.save(
            buf,
            "JPEG",
            quality=85 if variant == "preview" else 80,
            optimize=variant == "thumb",
        )
        out[variant] = buf.getvalue()
    return out


def _inspect_av(fh: IO[bytes], sniffed: Sniffed) -> Inspected:
    """Open audio/video with PyAV: decide audio or video by the streams, enforce duration and
    frame-size limits, and decode the sound to prove it is real and measure its length."""
    import av

    fh.seek(0)
    try:
        container = av.open(fh, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        logger.info("media rejected by PyAV open: %s", exc)
        raise MediaRejected(
            f"The file looks like {sniffed.ext.upper()} but is damaged or unreadable.",
            400,
        ) from None
    try:
        video = [
            s
            for s in container.streams.video
            if not (
                s.disposition & av.stream.Disposition.attached_pic
            )  # cover art is not video
            and s.codec_context is not None
        ]
        audio = list(container.streams.audio)
        header_seconds = container.duration / 1_000_000 if container.duration else None
        if video:
            ext, content_type = _VIDEO_TYPES.get(
                sniffed.ext, (sniffed.ext, f"video/{sniffed.ext}")
            )
            stream = video[0]
            width, height = (
                stream.codec_context.width or 0,
                stream.codec_context.height or 0,
            )
            return Inspected(
                VIDEO,
                ext,
                content_type,
                width=width,
                height=height,
                duration=header_seconds,
            )
        if not audio:
            raise MediaRejected(
                "The file contains no sound or pictures that can be analysed.", 415
            )
        ext, content_type = (
            _AUDIO_TYPES.get(sniffed.ext, (sniffed.ext, sniffed.content_type))
            if sniffed.kind == VIDEO
            else (sniffed.ext, sniffed.content_type)
        )
        duration = _decoded_seconds(container, audio[0], header_seconds)
        return Inspected(AUDIO, ext, content_type, duration=duration)
    finally:
        container.close()


def _too_long(seconds: float, limit: float) -> MediaRejected:
    return MediaRejected(
        f"The recording is too long ({seconds:.0f} s); the limit is {limit:.0f} seconds.",
        413,
    )


def _decoded_seconds(
    container: Any, stream: Any, header_seconds: float | None
) -> float:
    """Seconds of sound actually decodable (headers can lie), stopping early past the limit."""
    import av

    limit = float(settings.MAX_AUDIO_SECONDS)
    if header_seconds is not None and header_seconds > limit + 1.0:
        raise _too_long(header_seconds, limit)
    rate = stream.codec_context.sample_rate or stream.rate or 0
    samples = 0
    errors = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.InvalidDataError:
                errors += 1
                if errors > 20:
                    break
                continue
            for frame in frames:
                samples += frame.samples
                rate = frame.sample_rate or rate
            if rate and samples / rate > limit + 0.5:
                raise _too_long(
                    samples / rate if header_seconds is None else header_seconds, limit
                )
    except MediaRejected:
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError, MemoryError) as exc:
        logger.info("audio decode stopped: %s", exc)
    seconds = samples / rate if rate else 0.0
    if seconds < 0.05:
        raise MediaRejected(
            "The recording is damaged, truncated or contains no sound.", 400
        )
    return seconds


def inspect_upload(fh: IO[bytes], size: int) -> Inspected:
    """Check an upload end to end (size, magic bytes, decodability, limits); raise MediaRejected."""
    check_size(size)
    fh.seek(0)
    head = fh.read(64)
    sniffed = sniff(head)
    if sniffed is None:
        raise MediaRejected(
            "This file type is not supported. Upload a photo (JPEG, PNG, WebP, HEIC), a "
            "recording (WAV, MP3, M4A, OGG, FLAC, WebM) or a video (MP4, MOV, WebM).",
            415,
        )
    if sniffed.kind == IMAGE:
        return _inspect_image(fh, sniffed)
    return _inspect_av(fh, sniffed)


def check_video_limits(inspected: Inspected) -> None:
    """Video duration and frame-size limits (MAX_VIDEO_SECONDS, MAX_VIDEO_PIXELS)."""
    if (
        inspected.duration is not None
        and inspected.duration > settings.MAX_VIDEO_SECONDS
    ):
        raise MediaRejected(
            f"The video is too long ({inspected.duration:.0f} s); the limit is "
            f"{settings.MAX_VIDEO_SECONDS:.0f} seconds.",
            413,
        )
    if (
        inspected.width
        and inspected.height
        and inspected.width * inspected.height > settings.MAX_VIDEO_PIXELS
    ):
        raise MediaRejected(
            f"The video frame is too large ({inspected.width}×{inspected.height}); the limit is "
            f"{settings.MAX_VIDEO_PIXELS} pixels per frame.",
            413,
        )


def sha256_of(fh: IO[bytes]) -> str:
    fh.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
    fh.seek(0)
    return digest.hexdigest()


def as_file(upload: Any) -> tuple[File, int, str | None]:
    """(Django File, size, client name) for an UploadedFile, a File or raw bytes."""
    if isinstance(upload, (bytes, bytearray, memoryview)):
        data = bytes(upload)
        return ContentFile(data), len(data), None
    if isinstance(upload, File):
        return upload, upload.size or 0, getattr(upload, "name", None)
    if hasattr(upload, "read"):
        data = upload.read()
        if not isinstance(data, bytes):
            raise MediaRejected("The upload must be a file.", 400)
        return ContentFile(data), len(data), getattr(upload, "name", None)
    raise MediaRejected("The upload must be a file.", 400)


# --- storage and serving -------------------------------------------------------------------


def user_dir(owner_id: int) -> str:
    return f"users/{int(owner_id)}"


def rendition_name(analysis: Analysis, variant: str) -> str:
    """Storage name of a derived JPEG (``thumb`` or ``preview``) next to the original."""
    if variant not in {"thumb", "preview"}:
        raise ValueError(variant)
    return f"{user_dir(analysis.owner_id)}/{analysis.uid.hex}.{variant}.jpg"


def stored_names(analysis: Analysis) -> list[str]:
    """Every file this analysis may own in storage (original plus renditions)."""
    names = [rendition_name(analysis, "thumb"), rendition_name(analysis, "preview")]
    if analysis.media:
        names.insert(0, analysis.media.name)
    return names


class StorageUnavailable(ConnectionError):
    """The media store did not answer (network, timeout, 5xx): try again later. A ConnectionError,
    so the analysis task retries it like a broker or database outage."""


class StoredFileMissing(FileNotFoundError):
    """The store answered: no such file."""


def object_store() -> bool:
    """Whether media lives in an S3-compatible bucket (MEDIA_STORAGE_URL) rather than MEDIA_ROOT."""
    return hasattr(default_storage, "bucket_name")  # django-storages' S3Storage


def _storage_error(exc: BaseException, operation: str) -> Exception:
    """The exception to raise for a failed storage call (counted in the storage error metric)."""
    from recognition.operations import metrics

    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    if isinstance(exc, FileNotFoundError) or code in {"NoSuchKey", "404", "NotFound"}:
        return StoredFileMissing(operation)  # not the store's fault: not an error to count
    metrics.count_storage_error(operation)
    logger.warning("media storage %s failed: %s", operation, type(exc).__name__)
    return StorageUnavailable(f"media storage {operation} failed ({type(exc).__name__})")


def _storage_exceptions() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (OSError,)
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - installed from requirements.txt
        return errors
    return (*errors, BotoCoreError, ClientError)


def save_file(name: str, content: File) -> str:
    """Store ``content`` under ``name`` (a free variant of it); raises StorageUnavailable."""
    try:
        return default_storage.save(name, content)
    except _storage_exceptions() as exc:
        raise _storage_error(exc, "save") from exc


def read_bytes(name: str) -> bytes:
    """The whole stored file; StoredFileMissing when it is gone, StorageUnavailable when the store
    does not answer. Inference gets bytes, never a path, so it runs on any host."""
    try:
        with default_storage.open(name, "rb") as fh:
            return fh.read()
    except _storage_exceptions() as exc:
        raise _storage_error(exc, "read") from exc


def delete_files(names: list[str]) -> None:
    """Remove stored files, ignoring ones already gone (deletion must be repeatable)."""
    for name in names:
        try:
            default_storage.delete(name)
        except (*_storage_exceptions(), ValueError) as exc:  # reported, not fatal
            _storage_error(exc, "delete")
            logger.warning("could not delete media %s", name, exc_info=True)


def stored_under(folder: str) -> list[str]:
    """Every stored file name under ``folder`` (recursively), through the storage API."""
    names: list[str] = []
    pending = [folder.strip("/")]
    while pending:
        current = pending.pop()
        try:
            dirs, files = default_storage.listdir(current)
        except FileNotFoundError:
            continue
        except _storage_exceptions() as exc:
            raise _storage_error(exc, "list") from exc
        names.extend(f"{current}/{f}" for f in files)
        pending.extend(f"{current}/{d}" for d in dirs)
    return names


def delete_folder(folder: str) -> int:
    """Delete every file under ``folder`` (a user's whole media, files of analyses that no
    record names any more included); returns how many. Empty local folders go too."""
    names = stored_under(folder)
    delete_files(names)
    if not object_store():  # a bucket has no folders; a file system keeps empty ones
        import shutil

        try:
            shutil.rmtree(default_storage.path(folder), ignore_errors=True)
        except NotImplementedError:  # pragma: no cover - a storage without local paths
            pass
    return len(names)


RANGE_BUFFER = 256 * 1024  # bytes fetched per GetObject when streaming from the bucket


class RangedObject(io.RawIOBase):
    """A read-only, seekable view of one object in the bucket that fetches only the bytes read
    (``GetObject`` with ``Range``), so a player seeking in a long video does not make the web
    server download the whole file first (django-storages' S3File does)."""

    def __init__(self, storage: Any, name: str) -> None:
        from storages.utils import clean_name

        super().__init__()
        self._client = storage.connection.meta.client
        self._bucket = storage.bucket_name
        self._key = storage._normalize_name(clean_name(name))
        head = self._client.head_object(Bucket=self._bucket, Key=self._key)
        self.size = int(head["ContentLength"])
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int = -1) -> bytes:
        if self._position >= self.size:
            return b""
        end = self.size - 1 if size is None or size < 0 else min(self.size, self._position + size) - 1
        try:
            answer = self._client.get_object(
                Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end}"
            )
            data = answer["Body"].read()
        except _storage_exceptions() as exc:
            raise _storage_error(exc, "read") from exc
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_stored(name: str) -> IO[bytes]:
    """A seekable reader of a stored file for a response; StoredFileMissing / StorageUnavailable."""
    try:
        if object_store():  # buffered: a response reads 4 KB at a time, a GET per read would crawl
            return io.BufferedReader(RangedObject(default_storage, name), buffer_size=RANGE_BUFFER)
        return default_storage.open(name, "rb")
    except _storage_exceptions() as exc:
        raise _storage_error(exc, "read") from exc


def _ascii_name(name: str) -> str:
    return (
        "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
        or "download"
    )


def serve(
    analysis: Analysis, *, variant: str | None = None, download: bool = False
) -> HttpResponse:
    """The owner's file (or a rendition) as a private, non-sniffable response; 404 if missing,
    503 (the API's error shape) while the media store does not answer.

    The caller has already checked ownership (``selectors.get_analysis_for``).
    """
    if variant not in {None, "thumb", "preview"}:
        raise Http404("no such rendition")
    if variant is None and not analysis.media:
        raise Http404("no media")
    try:
        if variant:
            name, content_type = rendition_name(analysis, variant), "image/jpeg"
            try:
                fh = open_stored(name)
            except StoredFileMissing:
                if not (variant == "preview" and analysis.media and analysis.content_type in BROWSER_IMAGES):
                    raise Http404("no such rendition") from None
                name, content_type = analysis.media.name, analysis.content_type
                fh = open_stored(name)
        else:
            name = analysis.media.name
            content_type = analysis.content_type or "application/octet-stream"
            fh = open_stored(name)
    except StoredFileMissing:
        raise Http404("media file is gone") from None
    except StorageUnavailable:
        unavailable = JsonResponse(
            {"error": {"status": 503, "code": "storage_unavailable",
                       "message": "The file cannot be read just now. Please try again in a minute."}},
            status=503,
        )  # fmt: skip
        unavailable["Retry-After"] = "30"
        return unavailable
    filename = analysis.original_name or os.path.basename(name)
    response = FileResponse(
        fh, content_type=content_type, as_attachment=download, filename=filename
    )
    if not download:
        # FileResponse only sets a filename for attachments; keep the name for "save as" too.
        response["Content-Disposition"] = f'inline; filename="{_ascii_name(filename)}"'
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"
    )
    return response


BROWSER_IMAGES = {
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/avif",
    "image/bmp",
}
