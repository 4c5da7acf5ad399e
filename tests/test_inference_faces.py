"""Face inference core: image decoding (formats, colour modes, EXIF, hostile input), YuNet
detection on the real test photos, the analyze_image contract, thread safety, model errors and
the shipped model on a few clear FER2013 PublicTest faces."""

from __future__ import annotations

import io
import json
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from recognition.inference import faces, registry
from recognition.inference.errors import InvalidMedia
from recognition.inference.images import decode_image, image_size, sniff_image_format
from recognition.inference.labels import FACE_EMOTIONS

MEDIA = Path(__file__).parent / "media"
FER = MEDIA / "fer"
REPO_MODELS = Path(__file__).resolve().parents[1] / "models"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo_rgb() -> Image.Image:
    """test_image.jpg (six faces) at 1024x768 as a PIL RGB image, to keep the tests quick."""
    return (
        Image.open(MEDIA / "test_image.jpg")
        .convert("RGB")
        .resize((1024, 768), Image.Resampling.LANCZOS)
    )


@pytest.fixture
def tiny_model(settings, tiny_face_models):
    settings.MODELS_DIR = tiny_face_models
    return tiny_face_models


def assert_boxes_inside(boxes, width: int, height: int) -> None:
    for x, y, w, h in boxes:
        assert all(isinstance(v, int) for v in (x, y, w, h))
        assert 0 <= x and 0 <= y and w > 0 and h > 0
        assert x + w <= width and y + h <= height


# --- decoding -------------------------------------------------------------------------------


def test_decode_real_jpeg_matches_opencv(face_photo):
    bgr = decode_image(face_photo)
    assert bgr.shape == (1536, 2048, 3) and bgr.dtype == np.uint8
    assert np.array_equal(bgr, cv2.imread(str(MEDIA / "test_image.jpg")))
    assert decode_image(face_photo, grayscale=True).shape == (1536, 2048)
    assert image_size(face_photo) == (2048, 1536)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "BMP", "HEIF", "AVIF"])
def test_formats_decode_by_magic_bytes(photo_rgb, fmt):
    if fmt == "HEIF":
        pillow_heif = pytest.importorskip("pillow_heif")
        pillow_heif.register_heif_opener()
    small = photo_rgb.resize((160, 120))
    data = encode(small, fmt)
    assert sniff_image_format(data) == {"HEIF": "heif", "WEBP": "webp"}.get(
        fmt, fmt.lower()
    )
    bgr = decode_image(data)
    assert bgr.shape == (120, 160, 3)
    reference = cv2.cvtColor(np.asarray(small), cv2.COLOR_RGB2BGR).astype(int)
    assert (
        np.abs(bgr.astype(int) - reference).mean() < 12
    )  # lossy formats, GIF's palette


def test_grey_rgba_16bit_and_cmyk_photos_all_find_the_faces(photo_rgb):
    grey = photo_rgb.convert("L")
    rgba = photo_rgb.convert("RGBA")
    grey16 = cv2.imencode(".png", np.asarray(grey).astype(np.uint16) * 257)[1].tobytes()
    bgr48 = cv2.imencode(
        ".png",
        cv2.cvtColor(np.asarray(photo_rgb), cv2.COLOR_RGB2BGR).astype(np.uint16) * 257,
    )[1].tobytes()
    inputs = {
        "grey png": encode(grey, "PNG"),
        "grey jpeg": encode(grey, "JPEG", quality=92),
        "rgba png": encode(rgba, "PNG"),
        "16-bit grey png": grey16,
        "16-bit colour png": bgr48,
        "cmyk jpeg": encode(photo_rgb.convert("CMYK"), "JPEG", quality=92),
        "palette png": encode(
            photo_rgb.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"
        ),
    }
    assert Image.open(io.BytesIO(grey16)).mode.startswith("I")
    for name, data in inputs.items():
        bgr = decode_image(data)
        assert bgr.shape == (768, 1024, 3) and bgr.dtype == np.uint8, name
        # same picture, not a black or white page (16-bit data must be scaled, not clipped)
        assert (
            abs(
                float(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).mean())
                - float(np.asarray(grey).mean())
            )
            < 6
        ), name
        assert 5 <= len(faces.detect_faces(bgr)) <= 7, name


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (40, 30), (10, 200, 30, 0))
    image.paste((200, 10, 10, 255), (0, 0, 20, 30))
    bgr = decode_image(encode(image, "PNG"))
    assert tuple(bgr[5, 5]) == (10, 10, 200)  # opaque red stays red (BGR)
    assert tuple(bgr[5, 35]) == (255, 255, 255)  # transparent green is not shown


def test_exif_rotated_photo_is_turned_upright_and_faces_found(photo_rgb):
    upright = faces.detect_faces(cv2.cvtColor(np.asarray(photo_rgb), cv2.COLOR_RGB2BGR))
    # A phone stores the pixels sideways and says so in EXIF Orientation 6 ("rotate 90 CW").
    sideways = photo_rgb.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(sideways, "JPEG", quality=92, exif=exif.tobytes())
    bgr = decode_image(data)
    assert bgr.shape == (768, 1024, 3)
    found = faces.detect_faces(bgr)
    assert len(found) == len(upright) >= 5
    for (x, y, w, h), (ux, uy, uw, uh) in zip(found, upright, strict=True):
        assert (
            abs((x + w / 2) - (ux + uw / 2)) < 12
            and abs((y + h / 2) - (uy + uh / 2)) < 12
        )


def test_broken_exif_does_not_make_a_photo_unusable():
    data = encode(Image.new("RGB", (64, 48), (200, 100, 50)), "JPEG")
    payload = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x09\x00"
    broken = (
        data[:2]
        + b"\xff\xe1"
        + struct.pack(">H", len(payload) + 2)
        + payload
        + data[2:]
    )
    assert decode_image(broken).shape == (48, 64, 3)


def test_an_mp4_that_lists_mif1_is_not_a_photo():
    head = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2mif1mp41" + b"\x00" * 64
    assert sniff_image_format(head) is None
    with pytest.raises(InvalidMedia, match="not a supported image"):
        decode_image(head)


def craft_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"just some text, not a picture", "not a supported image"),
        (b"%PDF-1.7\n" + b"0" * 200, "not a supported image"),
        (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "corrupt"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 300, "corrupt"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x01" * 100, "corrupt"),
        (craft_png(50_000, 50_000), "too large"),
        (
            craft_png(8_000, 6_000),
            "too large",
        ),  # 48 MP: over the 40 MP default, under Pillow's own
    ],
)
def test_unusable_bytes_raise_invalid_media(data, message):
    with pytest.raises(InvalidMedia, match=message):
        decode_image(data)
    with pytest.raises(InvalidMedia):
        faces.analyze_image(data)


def test_truncated_jpeg_is_refused(face_photo):
    with pytest.raises(InvalidMedia, match="corrupt|truncated"):
        decode_image(face_photo[: len(face_photo) // 2])


def test_pixel_limit_comes_from_settings(settings, face_photo):
    settings.MAX_IMAGE_PIXELS = 1_000_000
    with pytest.raises(InvalidMedia, match="too large: 2048x1536 pixels"):
        decode_image(face_photo)
    assert decode_image(face_photo, max_pixels=4_000_000).shape == (1536, 2048, 3)


@pytest.mark.parametrize(
    "image",
    [
        None,
        42,
        "photo.jpg",
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((20, 20), np.float32),
        np.zeros((4, 4, 2), np.uint8),
    ],
)
def test_wrong_types_raise_invalid_media(image):
    with pytest.raises(InvalidMedia):
        faces.analyze_image(image)


# --- detection ------------------------------------------------------------------------------


def test_faces_found_on_the_test_photos(face_photo, group_photo):
    for data, low, high in ((face_photo, 6, 6), (group_photo, 9, 11)):
        bgr = decode_image(data)
        boxes = faces.detect_faces(bgr)
        assert low <= len(boxes) <= high
        assert_boxes_inside(boxes, bgr.shape[1], bgr.shape[0])
        assert boxes == sorted(boxes, key=lambda b: (b[0], b[1]))  # left to right


def test_the_selfie_face_is_the_large_box_in_the_lower_middle(face_photo):
    boxes = faces.detect_faces(decode_image(face_photo))
    x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
    assert 300 < w < 600 and h > w and 780 < y < 950 and 750 < x < 950


def test_small_images_are_upscaled_for_detection():
    face = cv2.imread(str(next((FER / "happy").glob("*.jpg"))), cv2.IMREAD_GRAYSCALE)
    boxes = faces.detect_faces(face)
    assert len(boxes) == 1
    assert_boxes_inside(boxes, 48, 48)


def test_no_faces_in_a_blank_image(tiny_model):
    result = faces.analyze_image(np.full((300, 400, 3), 127, np.uint8))
    assert result["faces"] == [] and (result["width"], result["height"]) == (400, 300)


# --- analyze_image contract (untrained tiny model: plumbing, not accuracy) ------------------


def test_analyze_image_contract(tiny_model, group_photo):
    result = faces.analyze_image(group_photo)
    json.dumps(result)  # stored as JSON as it is
    assert (result["width"], result["height"]) == (1280, 720)
    assert result["model"] == {"name": "face_tiny", "version": "0.test"}
    assert set(result["timings"]) == {"decode_ms", "detect_ms", "classify_ms"}
    assert 9 <= len(result["faces"]) <= 11
    assert_boxes_inside([f["box"] for f in result["faces"]], 1280, 720)
    for face in result["faces"]:
        assert set(face) == {"box", "too_small", "emotion", "confidence", "probabilities"}
        assert face["too_small"] == (max(face["box"][2:]) < faces.MIN_JUDGE_PX)
        assert list(face["probabilities"]) == list(FACE_EMOTIONS)
        assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert face["emotion"] == max(
            face["probabilities"], key=face["probabilities"].get
        )
        assert face["confidence"] == face["probabilities"][face["emotion"]]


def test_array_input_gives_the_same_faces_as_bytes(tiny_model, group_photo):
    from_bytes = faces.analyze_image(group_photo)
    from_array = faces.analyze_image(cv2.imread(str(MEDIA / "12_angry_men.jpg")))
    from_grey = faces.analyze_image(
        cv2.imread(str(MEDIA / "12_angry_men.jpg"), cv2.IMREAD_GRAYSCALE)
    )
    assert [f["box"] for f in from_array["faces"]] == [
        f["box"] for f in from_bytes["faces"]
    ]
    assert len(from_grey["faces"]) == len(from_bytes["faces"])
    assert from_array["timings"]["decode_ms"] < from_bytes["timings"]["decode_ms"]


def test_batched_classification_equals_one_by_one(tiny_model):
    crops = [
        cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(FER.glob("*/*.jpg"))
    ]
    batch = faces.classify_faces(crops)
    single = np.concatenate([faces.classify_faces([c]) for c in crops])
    assert batch.shape == (len(crops), 7)
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_concurrent_threads_get_the_same_results(tiny_model, face_photo, group_photo):
    expected = [faces.analyze_image(d)["faces"] for d in (face_photo, group_photo)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda d: faces.analyze_image(d)["faces"], [face_photo, group_photo] * 3
            )
        )
    for i, got in enumerate(results):
        want = expected[i % 2]
        assert [f["box"] for f in got] == [f["box"] for f in want]
        for g, w in zip(got, want, strict=True):
            assert g["probabilities"] == pytest.approx(w["probabilities"], abs=1e-5)


# --- model errors ---------------------------------------------------------------------------


def test_missing_models_raise_model_unavailable(settings, tmp_path, face_photo):
    settings.MODELS_DIR = tmp_path
    registry.clear_cache()
    with pytest.raises(registry.ModelUnavailable, match="registry.json"):
        faces.analyze_image(face_photo)
    (tmp_path / "registry.json").write_text(json.dumps({"face": "face_gone"}))
    with pytest.raises(registry.ModelUnavailable, match="face_gone.json is missing"):
        faces.analyze_image(face_photo)
    registry.write_card({"name": "face_gone", "classes": list(FACE_EMOTIONS)}, tmp_path)
    with pytest.raises(registry.ModelUnavailable, match="face_gone.keras is missing"):
        faces.analyze_image(face_photo)


def test_corrupt_model_files_raise_model_unavailable(tmp_path, tiny_face_models):
    registry.clear_cache()
    (tmp_path / "face_bad.keras").write_bytes(b"PK\x03\x04 this is not a keras archive")
    registry.write_card({"name": "face_bad", "classes": list(FACE_EMOTIONS)}, tmp_path)
    with pytest.raises(registry.ModelUnavailable, match="could not be loaded"):
        registry.get_model("face_bad", directory=tmp_path)
    # a real model file that is not the one its card describes
    (tmp_path / "face_swapped.keras").write_bytes(
        (tiny_face_models / "face_tiny.keras").read_bytes()
    )
    registry.write_card(
        {"name": "face_swapped", "classes": list(FACE_EMOTIONS), "sha256": "0" * 64},
        tmp_path,
    )
    with pytest.raises(registry.ModelUnavailable, match="does not match the sha256"):
        registry.get_model("face_swapped", directory=tmp_path)
    with pytest.raises(
        registry.ModelUnavailable, match="card .* is missing or unreadable"
    ):
        registry.get_model("face_nothing", directory=tmp_path)


# --- the shipped model ----------------------------------------------------------------------

shipped = pytest.mark.skipif(
    not (REPO_MODELS / "registry.json").exists(),
    reason="the face model has not been shipped to models/ yet",
)


@shipped
def test_shipped_model_predicts_clear_fer_faces(settings):
    settings.MODELS_DIR = REPO_MODELS
    registry.clear_cache()
    paths = sorted(FER.glob("*/*.jpg"))
    crops = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]
    probabilities = faces.classify_faces(crops)
    classes = registry.get_model(task="face").classes
    predicted = [classes[i] for i in probabilities.argmax(axis=1)]
    assert predicted == [p.parent.name for p in paths]


@shipped
def test_shipped_model_serves_the_photos(settings, face_photo):
    settings.MODELS_DIR = REPO_MODELS
    registry.clear_cache()
    card = registry.load_card(registry.served_name("face"))
    result = faces.analyze_image(face_photo)
    members = [{"name": m["name"], "version": registry.load_card(m["name"])["version"]} for m in card.get("members", [])]
    assert result["model"] == {"name": card["name"], "version": str(card["version"]), **({"members": members} if members else {})}
    assert len(result["faces"]) == 6
    assert all(f["emotion"] in card["classes"] for f in result["faces"])
