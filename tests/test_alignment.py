"""Tilted heads: eyes levelled from YuNet's landmarks before the crop, in the one preprocessing
module that photos, live frames and videos share; and the pose/size evaluation command."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from recognition.inference import faces
from recognition.inference.images import decode_image
from recognition.inference.preprocessing import (
    ALIGN_MIN_DEGREES,
    align_face,
    crop_face,
    eye_angle,
    to_gray,
)
from tests.conftest import MEDIA


def rotated(bgr: np.ndarray, degrees: float) -> np.ndarray:
    h, w = bgr.shape[:2]
    return cv2.warpAffine(bgr, cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0), (w, h), borderMode=cv2.BORDER_REPLICATE)


def upscaled_angle(crop: np.ndarray) -> float | None:
    """Eye angle YuNet measures on a 48x48 crop (upscaled as the detector does)."""
    found = faces.detect_with_landmarks(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR))
    return eye_angle(max(found, key=lambda d: d[1])[2]) if found else None


def test_landmarks_come_with_every_box_in_image_pixels():
    bgr = decode_image((MEDIA / "12_angry_men.jpg").read_bytes())
    found = faces.detect_with_landmarks(bgr)
    assert [(b, s) for b, s, _ in found] == faces.detect_with_scores(bgr)
    for (x, y, w, h), _, landmarks in found:
        assert landmarks.shape == (5, 2)
        # eyes, nose and mouth corners lie inside (or at the edge of) their own face box
        assert np.all(landmarks[:, 0] >= x - 0.1 * w) and np.all(landmarks[:, 0] <= x + 1.1 * w)
        assert np.all(landmarks[:, 1] >= y - 0.1 * h) and np.all(landmarks[:, 1] <= y + 1.1 * h)
        assert landmarks[0, 0] < landmarks[1, 0]  # the face's right eye is on the image's left


def test_an_upright_face_is_cropped_exactly_as_before():
    bgr = decode_image((MEDIA / "12_angry_men.jpg").read_bytes())
    gray = to_gray(bgr)
    upright = [d for d in faces.detect_with_landmarks(bgr) if abs(eye_angle(d[2])) < ALIGN_MIN_DEGREES]
    assert len(upright) >= 3
    for box, _, landmarks in upright:
        assert np.array_equal(align_face(gray, tuple(box), landmarks), crop_face(gray, tuple(box)))
    box, _, _ = upright[0]
    assert np.array_equal(align_face(gray, tuple(box), None), crop_face(gray, tuple(box)))


@pytest.mark.parametrize("degrees", [35, -35])
def test_a_tilted_face_comes_out_with_level_eyes(degrees):
    """YuNet's landmarks see only part of a tilt on some faces (they lean towards upright), so
    the faces checked are those whose landmarks show one; each comes out more level."""
    tilted = []
    for name in ("12_angry_men.jpg", "test_image.jpg"):
        bgr = rotated(decode_image((MEDIA / name).read_bytes()), degrees)
        tilted += [(to_gray(bgr), d) for d in faces.detect_with_landmarks(bgr) if abs(eye_angle(d[2])) >= ALIGN_MIN_DEGREES]
    assert len(tilted) >= 3
    improved = 0
    for gray, (box, _, landmarks) in tilted:
        # the tilt is seen in the right direction: rotating the photo counter-clockwise on
        # screen lifts the image-right eye (negative angle in image coordinates)
        assert np.sign(eye_angle(landmarks)) == -np.sign(degrees)
        aligned, plain = align_face(gray, tuple(box), landmarks), crop_face(gray, tuple(box))
        assert aligned.shape == (48, 48) and aligned.dtype == np.uint8
        after, before = upscaled_angle(aligned), upscaled_angle(plain)
        if after is not None and before is not None and abs(after) < abs(before):
            improved += 1
    assert improved >= 0.75 * len(tilted)


@pytest.mark.parametrize("degrees", [30, -30])
def test_refined_landmarks_see_more_of_the_tilt(degrees, settings):
    """YuNet's first landmarks lean towards upright; looking again at the face turned towards
    upright recovers most of the tilt, and the served crop uses the refined landmarks."""
    tilted = []
    for name in ("12_angry_men.jpg", "test_image.jpg"):
        bgr = rotated(decode_image((MEDIA / name).read_bytes()), degrees)
        tilted += [(to_gray(bgr), d) for d in faces.detect_with_landmarks(bgr) if abs(eye_angle(d[2])) >= ALIGN_MIN_DEGREES]
    assert len(tilted) >= 3
    errors_first, errors_refined = [], []
    for gray, (box, _, landmarks) in tilted:
        refined = faces.refine_landmarks(gray, box, landmarks)
        assert refined.shape == (5, 2)
        # the true tilt in image coordinates is -degrees (see the test above)
        errors_first.append(abs(eye_angle(landmarks) + degrees))
        errors_refined.append(abs(eye_angle(refined) + degrees))
        # refined points stay on the face: within its box, with some margin
        x, y, w, h = box
        assert np.all((refined[:, 0] > x - 0.25 * w) & (refined[:, 0] < x + 1.25 * w))
        assert np.all((refined[:, 1] > y - 0.25 * h) & (refined[:, 1] < y + 1.25 * h))
    # real photos turned 30 degrees, mean error of the eye line: 12.8 -> 4.4 degrees (+30) and
    # 15.4 -> 10.0 (-30); worst 23.7 -> 9.2 and 24.8 -> 16.1 (deterministic: same inputs, same YuNet)
    assert np.mean(errors_refined) < 0.7 * np.mean(errors_first)
    assert max(errors_refined) < max(errors_first)
    gray, (box, score, landmarks) = tilted[0]
    settings.FACE_ALIGN, settings.FACE_ALIGN_REFINE = True, True
    assert np.array_equal(faces.face_crops(gray, [(box, score, landmarks)])[0], align_face(gray, tuple(box), faces.refine_landmarks(gray, box, landmarks)))
    settings.FACE_ALIGN_REFINE = False
    assert np.array_equal(faces.face_crops(gray, [(box, score, landmarks)])[0], align_face(gray, tuple(box), landmarks))


def test_upright_faces_keep_their_landmarks():
    bgr = decode_image((MEDIA / "12_angry_men.jpg").read_bytes())
    gray = to_gray(bgr)
    upright = [d for d in faces.detect_with_landmarks(bgr) if abs(eye_angle(d[2])) < ALIGN_MIN_DEGREES]
    for box, _, landmarks in upright:
        assert faces.refine_landmarks(gray, box, landmarks) is not None
        assert np.array_equal(faces.refine_landmarks(gray, box, landmarks), landmarks)
    assert faces.refine_landmarks(gray, upright[0][0], None) is None


def test_the_photo_pipeline_aligns_unless_switched_off(settings):
    bgr = rotated(decode_image((MEDIA / "test_image.jpg").read_bytes()), 35)
    gray = to_gray(bgr)
    detections = faces.detect_with_landmarks(bgr)
    settings.FACE_ALIGN = True
    aligned = faces.face_crops(gray, detections)
    settings.FACE_ALIGN = False
    plain = faces.face_crops(gray, detections)
    assert [np.array_equal(a, crop_face(gray, tuple(d[0]))) for a, d in zip(plain, detections, strict=True)] == [True] * len(detections)
    assert sum(not np.array_equal(a, p) for a, p in zip(aligned, plain, strict=True)) >= 3
    settings.FACE_ALIGN = True
    result = faces.analyze_image(bgr)
    assert len(result["faces"]) == len(detections)


def test_pose_and_size_evaluation_runs_the_whole_pipeline(tmp_path, capsys):
    from tests.test_training_face import copy_fer
    from training import evaluate_pose

    copy_fer(tmp_path / "faces", "test", 4)
    result = evaluate_pose.main(["--data", str(tmp_path / "faces"), "--n", "0", "--angles", "0", "30", "--sizes", "96", "16"])
    out = capsys.readouterr().out
    assert "| rotation | detected |" in out and "| face size (px) |" in out
    assert result["n"] == 28 and [r["angle"] for r in result["angles"]] == [0, 30]
    upright = result["angles"][0]
    assert set(upright) >= {"refined", "aligned", "not_aligned"} and upright["refined"]["detected"] == upright["aligned"]["detected"]
    assert upright["aligned"]["detected"] >= 0.8  # YuNet finds nearly every FER face at 120 px
    assert 0 <= upright["aligned"]["accuracy"] <= 1 and upright["aligned"]["accuracy_all"] <= upright["aligned"]["accuracy"]
    assert result["sizes"][0]["detected"] > result["sizes"][1]["detected"]  # 16 px faces are mostly missed
    json.dumps(result)


def small_and_large_faces_photo() -> bytes:
    """The group photo's faces at their size on the left, and the same photo shrunk to a fifth
    (faces of 20-30 px) on the right, on one 1600x720 canvas."""
    photo = decode_image((MEDIA / "12_angry_men.jpg").read_bytes())  # 1280x720
    canvas = np.full((720, 1600, 3), 128, np.uint8)
    canvas[:, :1280] = photo
    small = cv2.resize(photo, (256, 144), interpolation=cv2.INTER_AREA)
    canvas[300:444, 1320:1576] = small
    return cv2.imencode(".png", canvas)[1].tobytes()


@pytest.mark.django_db
def test_faces_too_small_to_judge_are_marked_and_never_the_headline(user, django_capture_on_commit_callbacks, client):
    from recognition.analyses import services

    photo = small_and_large_faces_photo()
    result = faces.analyze_image(photo)
    small = [f for f in result["faces"] if f["too_small"]]
    large = [f for f in result["faces"] if not f["too_small"]]
    assert small and len(large) >= 6
    assert all(max(f["box"][2:]) < faces.MIN_JUDGE_PX for f in small)
    assert all(max(f["box"][2:]) >= faces.MIN_JUDGE_PX for f in large)

    with django_capture_on_commit_callbacks(execute=True):
        analysis = services.create_analysis(owner=user, upload=photo, filename="crowd.png")
    analysis.refresh_from_db()
    assert analysis.status == "done"
    headline = max((f for f in analysis.result["faces"] if not f["too_small"]), key=lambda f: f["box"][2] * f["box"][3])
    assert analysis.emotion == headline["emotion"]
    client.force_login(user)
    page = client.get(f"/analyses/{analysis.pk}/").content.decode()
    assert page.count("too small to judge") >= 2 * len(small)  # on the photo and on the face's card


def test_a_crowd_of_only_tiny_faces_has_no_headline():
    from recognition.analyses.services import _largest_face

    assert _largest_face([{"box": [0, 0, 20, 20], "emotion": "happy", "confidence": 0.9, "too_small": True}]) is None
    assert _largest_face([{"box": [0, 0, 20, 20], "emotion": "happy", "confidence": 0.9, "too_small": True},
                          {"box": [0, 0, 40, 40], "emotion": "sad", "confidence": 0.4, "too_small": False}])["emotion"] == "sad"


def test_live_replies_mark_small_faces_and_the_recording_skips_their_labels():
    from recognition.live import pipeline, protocol
    from recognition.live.recorder import SessionRecorder

    frame = cv2.imencode(".jpg", cv2.imdecode(np.frombuffer(small_and_large_faces_photo(), np.uint8), cv2.IMREAD_COLOR))[1].tobytes()
    reply = pipeline.analyze_frame(frame, protocol.LiveLimits(infer_max_width=1600))
    assert any(f["too_small"] for f in reply["faces"]) and any(not f["too_small"] for f in reply["faces"])
    recorder = SessionRecorder()
    recorder.add_frame(reply)
    assert recorder.face_count == len(reply["faces"])
    assert sum(recorder.labels.values()) == sum(not f["too_small"] for f in reply["faces"])
