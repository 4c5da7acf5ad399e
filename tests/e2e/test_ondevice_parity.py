"""The face pipeline on the person's own device (static/js/ondevice/, onnxruntime-web's
WebAssembly backend) finds and judges the same faces as the server, in headless Chromium.

Frames (640x480, the live page's size): the two test photos resized, and every FER2013 test face
of tests/media placed upright at two sizes as training/evaluate_pose.place places them. The
server's side is the project's own functions (faces.detect_with_landmarks, faces.face_crops,
faces.classify_faces with the live model); the browser gets the same decoded pixels as RGBA.

The bar (issue 31): every server box matched by a browser box with IoU >= 0.9 and no extra
browser box; the same top emotion for >= 97% of matched faces; mean absolute probability
difference <= 0.02 for every class, tilted faces included (eyes ALIGN_MIN_DEGREES or more off
level: both sides refine their landmarks by looking again in turned views, faces.refine_landmarks
and FacePipeline.refineLandmarks; they are also counted and reported on their own). A model file
altered by one byte is refused.
"""

from __future__ import annotations

import numpy as np
import pytest

from ..conftest import MEDIA
from .ondevice import MODELS, open_harness, pipeline_config, static_server

pytestmark = pytest.mark.browser

W, H = 640, 480
FER_SIZES = (160, 240)


def frames() -> list[np.ndarray]:
    import cv2

    from training.evaluate_pose import place

    out = [cv2.resize(cv2.imread(str(MEDIA / name)), (W, H), interpolation=cv2.INTER_AREA) for name in ("test_image.jpg", "12_angry_men.jpg")]
    for path in sorted((MEDIA / "fer2013" / "test").rglob("*.png")) + sorted((MEDIA / "fer2013" / "test").rglob("*.jpg")):
        face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        out += [place(face, size, 0.0)[0] for size in FER_SIZES]
    return out


def server_faces(bgr: np.ndarray) -> list[dict]:
    from recognition.inference import faces
    from recognition.inference.preprocessing import eye_angle, to_gray

    detections = faces.detect_with_landmarks(bgr)
    crops = faces.face_crops(to_gray(bgr), detections)
    probabilities = faces.classify_faces(crops, model=faces.live_model_name()) if crops else []
    return [{"box": box, "angle": eye_angle(landmarks), "p": np.asarray(p, np.float64)} for (box, _, landmarks), p in zip(detections, probabilities, strict=True)]


def test_browser_pipeline_matches_the_server(tmp_path):
    from playwright.sync_api import sync_playwright

    from recognition.inference import faces
    from recognition.inference.preprocessing import ALIGN_MIN_DEGREES
    from recognition.inference.tracking import iou

    from ..livesite import launch_chromium

    images = frames()
    assert len(images) >= 42
    rgba = b"".join(np.dstack([f[:, :, ::-1], np.full((H, W), 255, np.uint8)]).tobytes() for f in images)
    expected = [server_faces(f) for f in images]
    live = faces.live_model_name() or "face"
    config = pipeline_config(live)
    classes = config["card"]["classes"]
    corrupt = bytearray((MODELS / config["members"][0]["url"].rsplit("/", 1)[1]).read_bytes())
    corrupt[len(corrupt) // 2] ^= 0x01
    routes = {"/frames.rgba": rgba, "/altered/model.onnx": bytes(corrupt)}
    with static_server(routes) as base, sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = open_harness(browser, base)
        assert page.evaluate("c => window.ondevice.load(c)", config)
        got = page.evaluate("([u, w, h]) => window.ondevice.run(u, w, h)", ["/frames.rgba", W, H])
        # the sha256 check: the card's file is accepted, an altered copy refused, and a
        # pipeline pointed at the altered copy does not load
        member = config["members"][0]
        assert page.evaluate("([u, s]) => window.ondevice.verify(u, s)", [member["url"], member["sha256"]]) == "accepted"
        refused = page.evaluate("([u, s]) => window.ondevice.verify(u, s)", ["/altered/model.onnx", member["sha256"]])
        assert refused.startswith("refused: ") and member["sha256"] in refused, refused
        altered = {**config, "members": [{**member, "url": "/altered/model.onnx"}]}
        assert page.evaluate("c => window.ondevice.loadFails(c)", altered) == "refused"
        browser.close()
    assert errors == []
    assert len(got) == len(images)

    server_total = sum(len(e) for e in expected)
    matched, extra, tilted, diffs, agree, tilted_diffs, tilted_agree = 0, 0, 0, [], 0, [], 0
    for want, have in zip(expected, got, strict=True):
        used = set()
        for face in want:
            scores = [(iou(face["box"], h["box"]), j) for j, h in enumerate(have) if j not in used]
            best = max(scores, default=(0.0, -1))
            if best[0] < 0.9:
                continue
            used.add(best[1])
            matched += 1
            q = np.array([have[best[1]]["probabilities"][c] for c in classes])
            if abs(face["angle"]) >= ALIGN_MIN_DEGREES:  # held like the others, also reported apart
                tilted += 1
                tilted_diffs.append(np.abs(q - face["p"]).mean())
                tilted_agree += int(np.argmax(q) == np.argmax(face["p"]))
            diffs.append(np.abs(q - face["p"]))
            agree += int(np.argmax(q) == np.argmax(face["p"]))
        extra += len(have) - len(used)
    diffs = np.array(diffs)
    compared = len(diffs)
    per_class = diffs.mean(axis=0) if compared else np.full(len(classes), np.nan)
    print(
        f"\non-device parity: {len(images)} frames, server faces {server_total}, found {matched}/{server_total} "
        f"({matched / max(1, server_total):.3f}), extra browser boxes {extra}; probabilities compared on {compared} faces "
        f"({tilted} of them tilted >= {ALIGN_MIN_DEGREES:g} deg): top-1 agreement {agree / max(1, compared):.4f}, "
        f"mean abs diff {diffs.mean() if compared else float('nan'):.2e} (worst class {per_class.max():.2e}), "
        f"max abs diff {diffs.max() if compared else float('nan'):.2e}; the tilted faces alone: top-1 agreement "
        f"{tilted_agree}/{tilted}, mean abs diff {np.mean(tilted_diffs) if tilted_diffs else float('nan'):.2e}"
    )
    assert server_total >= 40
    assert matched == server_total, f"browser found {matched} of {server_total} server faces"
    assert extra == 0, f"{extra} browser boxes the server does not find"
    assert compared == matched and compared >= 40
    assert tilted >= 10  # the refinement is exercised
    # Tilted faces on their own: without the refinement on the device they were 18/19 top-1 and a
    # mean difference of 0.032 (2026-12-05), which the overall bar alone does not catch.
    assert tilted_agree / tilted >= 0.97 and np.mean(tilted_diffs) <= 0.005, (tilted_agree, tilted, np.mean(tilted_diffs))
    assert agree / compared >= 0.97
    assert per_class.max() <= 0.02, dict(zip(classes, per_class.round(4).tolist(), strict=True))
