"""Image bytes -> numpy array, safely: magic bytes first, dimensions checked before any pixel is
decoded (decompression bombs), EXIF orientation applied, every colour mode normalised to uint8.

Used by ``faces.analyze_image`` and by the upload path; the limits come from ``config`` (the
MAX_IMAGE_PIXELS and MAX_UPLOAD_BYTES settings in the web layer, else the defaults below).
"""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np

from recognition.inference import config
from recognition.inference.errors import InvalidMedia

DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 25 * 1024 * 1024

# ISO-BMFF brands (bytes 8-12 after "ftyp") of the still-image formats decoded here.
HEIF_BRANDS = {
    b"heic",
    b"heix",
    b"hevc",
    b"hevx",
    b"heim",
    b"heis",
    b"mif1",
    b"msf1",
    b"heif",
}
AVIF_BRANDS = {b"avif", b"avis"}
VIDEO_BRANDS = {
    b"isom",
    b"mp41",
    b"mp42",
}  # an MP4 may list mif1 too: it is not a photo

_plugins_lock = threading.Lock()
_plugins_ready = False


def sniff_image_format(data: bytes) -> str | None:
    """'jpeg', 'png', 'gif', 'webp', 'bmp', 'heif', 'avif' from the first bytes, else None."""
    head = bytes(data[:64])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and len(head) >= 26 and head[6:10] == b"\0\0\0\0":
        return "bmp"
    if head[4:8] == b"ftyp":
        end = min(max(int.from_bytes(head[0:4], "big"), 16), len(head))
        major = head[8:12]
        brands = {major} | {head[i : i + 4] for i in range(16, end - 3, 4)}
        if major in AVIF_BRANDS:
            return "avif"
        if major in HEIF_BRANDS or (brands & HEIF_BRANDS and not brands & VIDEO_BRANDS):
            return "heif"
        if brands & AVIF_BRANDS and not brands & VIDEO_BRANDS:
            return "avif"
    return None


def _register_plugins() -> None:
    """HEIF support comes from pillow_heif; register it once per process (if installed)."""
    global _plugins_ready
    with _plugins_lock:
        if _plugins_ready:
            return
        from PIL import Image

        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:  # pragma: no cover - pillow_heif is in requirements.txt
            pass
        # Pillow's own guard (raises above twice this) also protects any other Pillow use.
        Image.MAX_IMAGE_PIXELS = config.get().max_image_pixels
        _plugins_ready = True


def _open(data: bytes, max_pixels: int):
    """Open lazily (header only) and refuse oversized images before decoding pixels."""
    from PIL import Image

    _register_plugins()
    try:
        with warnings.catch_warnings():
            # Size is checked below; Pillow's other warnings (corrupt EXIF ...) are not actionable.
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
    except (
        Image.DecompressionBombError
    ) as exc:  # above twice Pillow's process-wide limit
        raise InvalidMedia(
            _too_large(min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels)))
        ) from exc
    except (
        Exception
    ) as exc:  # UnidentifiedImageError, OSError, SyntaxError, struct errors ...
        raise InvalidMedia(
            "The file could not be read as an image: it is corrupt or not a supported format."
        ) from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidMedia("The image has no pixels.")
    if width * height > max_pixels:
        raise InvalidMedia(_too_large(max_pixels, f"{width}x{height} pixels"))
    return image


def _too_large(max_pixels: int, what: str = "it") -> str:
    return f"The image is too large: {what} is more than the limit of {max_pixels / 1e6:g} megapixels."


def image_size(data: bytes, *, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) from the header only; raises InvalidMedia like ``decode_image``."""
    _check_bytes(data)
    return _open(
        data, max_pixels or config.get().max_image_pixels
    ).size


def _check_bytes(data: object) -> str:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidMedia(f"Expected image bytes, got {type(data).__name__}.")
    if len(data) == 0:
        raise InvalidMedia("The image file is empty.")
    max_bytes = config.get().max_upload_bytes
    if len(data) > max_bytes:
        raise InvalidMedia(f"The image file is larger than {max_bytes / 1e6:.0f} MB.")
    kind = sniff_image_format(data)
    if kind is None:
        raise InvalidMedia(
            "This is not a supported image (JPEG, PNG, WebP, GIF, BMP, HEIC or AVIF)."
        )
    return kind


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """16-bit and 32-bit grey (PIL modes I;16*, I, F) -> uint8, keeping the full range visible."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        top = 1.0 if float(np.nanmax(array, initial=0.0)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(array) * (255.0 / top), 0, 255).astype(np.uint8)
    top = int(array.max(initial=0))
    # 16-bit data is scaled by 257; 8-bit values stored in a wider type are kept as they are.
    divisor = 257 if top > 255 or array.dtype.itemsize == 2 else 1
    return np.clip(array.astype(np.int64) // divisor, 0, 255).astype(np.uint8)


def _pixels(image) -> np.ndarray:
    """A decoded PIL image of any mode -> grey (H, W) or RGB (H, W, 3) uint8; alpha over white."""
    from PIL import Image

    mode = image.mode
    if mode == "P" or mode == "PA":
        image = image.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    elif mode == "1":
        image = image.convert("L")
    if image.mode in ("RGBA", "LA", "RGBa", "La"):
        target = "RGB" if image.mode.startswith("RGB") else "L"
        background = Image.new(
            target, image.size, 255 if target == "L" else (255, 255, 255)
        )
        background.paste(image.convert(target), mask=image.getchannel("A"))
        image = background
    if image.mode in ("L", "RGB"):
        return np.asarray(image, dtype=np.uint8)
    array = np.asarray(image)  # I;16, I;16B, I, F: grey with a wider type
    if array.ndim == 3:  # unexpected multi-channel mode: let Pillow convert it
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    return _to_uint8(array)


def _upright(image):
    """Apply the EXIF orientation; a photo whose EXIF block is broken is used as stored."""
    from PIL import ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # "Corrupt EXIF data": handled by falling back
            return ImageOps.exif_transpose(image) or image
    except Exception:  # noqa: BLE001 - malformed EXIF must not make the photo unusable
        return image


def decode_image(
    data: bytes, *, grayscale: bool = False, max_pixels: int | None = None
) -> np.ndarray:
    """Image bytes -> BGR (H, W, 3) uint8, or grey (H, W) uint8 when ``grayscale``.

    Refuses non-images, corrupt or truncated files and images whose header declares more than
    ``max_pixels`` (default ``settings.MAX_IMAGE_PIXELS``) with ``InvalidMedia``. Animated images
    give their first frame; EXIF orientation is applied so faces are upright.
    """
    import cv2
    from PIL import Image

    _check_bytes(data)
    max_pixels = max_pixels or config.get().max_image_pixels
    image = _open(bytes(data), max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # size checked in _open; see there
            image.load()
            image = _upright(image)
            pixels = _pixels(image)
    except InvalidMedia:
        raise
    except (Image.DecompressionBombError, MemoryError) as exc:
        raise InvalidMedia(_too_large(max_pixels)) from exc
    except Exception as exc:  # truncated data, bad EXIF, codec errors
        raise InvalidMedia(
            f"The image is corrupt or truncated and could not be decoded ({exc})."
        ) from exc
    finally:
        image.close()
    if (
        pixels.ndim != 2
        and (pixels.ndim != 3 or pixels.shape[2] != 3)
        or pixels.size == 0
    ):
        raise InvalidMedia("The image has an unsupported pixel layout.")
    if grayscale:
        return np.ascontiguousarray(
            pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        )
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
