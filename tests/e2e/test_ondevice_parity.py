"""The face pipeline on the person's own device (static/js/ondevice/, onnxruntime-web's
WebAssembly backend) finds and judges the same faces as the server, in headless Chromium.

Frames (640x480, the live page's size): the two test photos resized, and every FER2013 test face
of tests/media placed upright at two sizes as training/evaluate_pose.place places them. The
server's side is the project's own functions (faces.detect_with_landmarks, faces.face_crops,
faces.classify_faces with the live model); the browser gets the same decoded pixels as RGBA.

The bar (issue 31): every server box matched by a browser box with IoU >= 0.9 and no extra
browser box; the same top emotion for >= 97% of matched faces; mean absolute probability
difference <= 0.02 for every class. Faces whose eyes tilt ALIGN_MIN_DEGREES or more (their
landmarks are found again in turned views on both sides: faces.refine_landmarks and
static/js/ondevice/refine.js) are held to the same bar and also reported on their own, so a
refinement that drifts shows. A model file altered by one byte is refused.
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
    matched, extra, diffs, agree, tilted = 0, 0, [], [], []
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
            diffs.append(np.abs(q - face["p"]))
            agree.append(int(np.argmax(q) == np.argmax(face["p"])))
            tilted.append(abs(face["angle"]) >= ALIGN_MIN_DEGREES)
        extra += len(have) - len(used)
    diffs, agree, tilted = np.array(diffs), np.array(agree), np.array(tilted, dtype=bool)
    compared = len(diffs)
    per_class = diffs.mean(axis=0)
    print(
        f"\non-device parity: {len(images)} frames, server faces {server_total}, found {matched}/{server_total} "
        f"({matched / max(1, server_total):.3f}), extra browser boxes {extra}; probabilities compared on {compared} faces: "
        f"top-1 agreement {agree.mean():.4f}, mean abs diff {diffs.mean():.2e} (worst class {per_class.max():.2e}), "
        f"max abs diff {diffs.max():.2e}; of them tilted >= {ALIGN_MIN_DEGREES:g} deg (refined on both sides): {tilted.sum()}, "
        f"top-1 agreement {agree[tilted].sum()}/{tilted.sum()}, mean abs diff {diffs[tilted].mean() if tilted.any() else float('nan'):.2e}, "
        f"max {diffs[tilted].max() if tilted.any() else float('nan'):.2e}"
    )
    assert server_total >= 40
    assert matched == server_total, f"browser found {matched} of {server_total} server faces"
    assert extra == 0, f"{extra} browser boxes the server does not find"
    assert compared >= 40 and tilted.sum() >= 10  # tilted faces are part of the bar
    assert agree.mean() >= 0.97
    assert agree[tilted].mean() >= 0.97
    assert per_class.max() <= 0.02, dict(zip(classes, per_class.round(4).tolist(), strict=True))
    assert diffs[tilted].mean(axis=0).max() <= 0.02


def sequences() -> dict[str, list[np.ndarray]]:
    """Live-like frame sequences: a FER face turning from upright to 45 degrees either way and
    back (new tilts, reused and refreshed alignments), and the group photo turned 30 degrees for
    16 frames (faces only the turned detector views find, kept by their tracks between the frames
    that look at every view)."""
    import cv2

    from training.evaluate_pose import place

    face = cv2.imread(str(min((MEDIA / "fer2013" / "test").rglob("*.jpg"))), cv2.IMREAD_GRAYSCALE)
    angles = [0, 8, 16, 24, 32, 40, 45, 45, 40, 30, 20, 10, 0, -10, -20, -30, -40, -45, -45, -45, -30, -15, 0]
    turning = [place(face, 220, float(a))[0] for a in angles]
    group = cv2.resize(cv2.imread(str(MEDIA / "12_angry_men.jpg")), (W, H), interpolation=cv2.INTER_AREA)
    matrix = cv2.getRotationMatrix2D((W / 2, H / 2), 30.0, 1.0)
    turned = cv2.warpAffine(group, matrix, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(110, 110, 110))
    return {"turning face": turning, "group turned 30 deg": [turned] * 16}


def test_tracked_browser_sessions_match_the_servers_live_frames():
    """A live session on the device (FacePipeline.run with a FaceTracks) against the server's live
    path (faces.analyze_image with the live model and a tracking.FaceTracks), frame by frame: the
    same faces, top emotion and probabilities, and the same refinements computed and reused."""
    from playwright.sync_api import sync_playwright

    from recognition.inference import faces
    from recognition.inference.tracking import FaceTracks, iou

    from ..livesite import launch_chromium

    live = faces.live_model_name() or "face"
    config = pipeline_config(live)
    classes = config["card"]["classes"]
    runs = sequences()
    expected = {}
    for name, frames_ in runs.items():
        tracks = FaceTracks()
        expected[name] = ([faces.analyze_image(f, model=live, tracks=tracks)["faces"] for f in frames_], tracks.memory.refined, tracks.memory.reused)
    routes = {f"/seq{k}.rgba": b"".join(np.dstack([f[:, :, ::-1], np.full((H, W), 255, np.uint8)]).tobytes() for f in frames_) for k, frames_ in enumerate(runs.values())}
    with static_server(routes) as base, sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = open_harness(browser, base)
        assert page.evaluate("c => window.ondevice.load(c)", config)
        got = [page.evaluate("([u, w, h]) => window.ondevice.runTracked(u, w, h)", [f"/seq{k}.rgba", W, H]) for k in range(len(runs))]
        browser.close()
    assert errors == []
    for (name, (want_frames, refined, reused)), have in zip(expected.items(), got, strict=True):
        server_total = sum(len(w) for w in want_frames)
        matched, diffs, agree = 0, [], []
        for want, found in zip(want_frames, have["results"], strict=True):
            assert len(found) == len(want), f"{name}: browser {len(found)} faces, server {len(want)}"
            for face in want:
                best = max(found, key=lambda h: iou(face["box"], h["box"]))
                if iou(face["box"], best["box"]) < 0.9:
                    continue
                matched += 1
                q = np.array([best["probabilities"][c] for c in classes])
                p_ = np.array([face["probabilities"][c] for c in classes])
                diffs.append(np.abs(q - p_))
                agree.append(int(np.argmax(q) == np.argmax(p_)))
        diffs = np.array(diffs)
        print(
            f"\n{name}: {len(want_frames)} frames, server faces {server_total}, matched {matched}; top-1 agreement "
            f"{np.mean(agree):.4f}, mean abs diff {diffs.mean():.2e}, max {diffs.max():.2e}; refinements server "
            f"{refined} computed / {reused} reused, browser {have['refined']} / {have['reused']}"
        )
        assert server_total >= len(want_frames)  # every frame has a face
        assert matched == server_total
        assert np.mean(agree) >= 0.97
        assert diffs.mean(axis=0).max() <= 0.02
        assert (have["refined"], have["reused"]) == (refined, reused)
