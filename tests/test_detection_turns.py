"""Tilted faces are found, not only judged: the detector also looks at photos turned by
``faces.DETECT_TURNS``; live sessions and videos pay for the turned views only when their
tracks need them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recognition.inference import faces, tracking
from recognition.inference.preprocessing import eye_angle
from tests.conftest import MEDIA
from tests.test_tracking import SHAKE, tilted_frames
from training.evaluate_rotation import face_free


def test_a_face_the_upright_view_misses_is_found_with_the_turned_views_and_its_landmarks_level_it():
    frame = tilted_frames(60, SHAKE[:1])[0]  # the photo's face leans already: about 75 degrees
    assert faces.detect_with_landmarks(frame) == []  # upright alone misses it
    found = faces.detect_with_landmarks(frame, turns=faces.DETECT_TURNS)
    assert len(found) == 1
    box, score, landmarks = found[0]
    assert score >= faces.SCORE_THRESHOLD
    assert isinstance(landmarks, faces.TurnedLandmarks) and landmarks.turn in faces.DETECT_TURNS
    # the box is the face's own size about its centre, which sits near the frame's centre
    assert abs(box[0] + box[2] / 2 - 320) < 40 and abs(box[1] + box[3] / 2 - 240) < 40
    # landmarks seen near upright measure the whole tilt (the first ones of a tilted face, a third)
    assert abs(eye_angle(landmarks)) > 50
    assert faces.refine_landmarks(frame[:, :, 0], box, landmarks) is not None
    assert np.array_equal(faces.refine_landmarks(frame[:, :, 0], box, landmarks), np.asarray(landmarks))


@pytest.mark.parametrize(("photo", "count"), [("test_image.jpg", 6), ("12_angry_men.jpg", 10)])
def test_upright_group_photos_find_each_face_once(photo, count):
    image = cv2.imread(str(MEDIA / photo))
    upright = faces.detect_with_landmarks(image)
    turned = faces.detect_with_landmarks(image, turns=faces.DETECT_TURNS)
    assert len(upright) == len(turned) == count
    for (a, _, _), (b, _, _) in zip(sorted(upright), sorted(turned), strict=True):
        assert tracking.iou(a, b) > 0.5


def test_face_free_pictures_stay_face_free():
    for name, image in face_free().items():
        assert faces.detect_with_landmarks(image, turns=faces.DETECT_TURNS) == [], name


def test_photos_get_the_turned_views():
    frame = tilted_frames(60, SHAKE[:1])[0]
    result = faces.analyze_image(cv2.imencode(".jpg", frame)[1].tobytes())
    assert len(result["faces"]) == 1


class CountingTurns:
    def __init__(self, monkeypatch):
        self.calls: list[float] = []
        real = faces._turned_detections

        def counted(small, turn, *args):
            self.calls.append(turn)
            return real(small, turn, *args)

        monkeypatch.setattr(faces, "_turned_detections", counted)


def test_an_upright_live_face_pays_for_turned_views_one_frame_in_ten(monkeypatch):
    counting = CountingTurns(monkeypatch)
    tracks = tracking.FaceTracks()
    frames = tilted_frames(0, SHAKE) * 3  # 24 frames
    for frame in frames:
        assert len(faces.analyze_image(frame, model=faces.live_model_name(), tracks=tracks)["faces"]) == 1
    turned_frames = len(counting.calls) // len(faces.DETECT_TURNS)
    assert turned_frames == len(range(0, len(frames), tracking.TURN_EVERY))  # frames 0, 10, 20


def test_a_tilted_live_face_keeps_its_turned_view_and_is_never_dropped(monkeypatch):
    counting = CountingTurns(monkeypatch)
    tracks = tracking.FaceTracks()
    frames = tilted_frames(60, SHAKE)
    assert sum(len(faces.detect_with_landmarks(f)) for f in frames) < len(frames)  # upright misses some
    counting.calls.clear()
    for frame in frames:
        result = faces.analyze_image(frame, model=faces.live_model_name(), tracks=tracks)
        assert len(result["faces"]) == 1  # found on every frame
    assert tracks.tracker.next_id == 2  # one track all along
    # the view that found it runs every frame; the other only on the scheduled frame
    found_by = list(tracks.turn_of.values())
    assert len(found_by) == 1
    assert counting.calls.count(found_by[0]) == len(frames)
    assert len(counting.calls) <= len(frames) + len(faces.DETECT_TURNS)


def test_a_face_that_would_be_lost_gets_every_turned_view_in_the_same_frame(monkeypatch):
    tracks = tracking.FaceTracks()
    upright, tilted = tilted_frames(0, SHAKE[:2]), tilted_frames(60, SHAKE[:1])
    for frame in upright:
        faces.analyze_image(frame, model=faces.live_model_name(), tracks=tracks)
    assert tracks.turns(faces.DETECT_TURNS) == ()  # frame 2: nothing scheduled
    # the person tilts their head much further: the upright view loses them, so every turned
    # view runs in this very frame and the face is still there
    assert faces.detect_with_landmarks(tilted[0]) == []
    result = faces.analyze_image(tilted[0], model=faces.live_model_name(), tracks=tracks)
    assert len(result["faces"]) == 1
