"""YuNet run by ONNX Runtime (recognition/inference/yunet.py) finds what cv2.FaceDetectorYN finds:
the same rows (boxes, landmarks, scores) on real photos, in every size the site feeds it, and the
site's detection path serves through it unless DETECTOR_ENGINE=opencv."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recognition.inference import faces, registry, yunet
from tests.conftest import REPO

MEDIA = REPO / "tests" / "media"


def opencv_rows(bgr: np.ndarray, threshold: float) -> np.ndarray:
    detector = cv2.FaceDetectorYN.create(str(faces.detector_path()), "", (bgr.shape[1], bgr.shape[0]),
                                         threshold, faces.NMS_THRESHOLD, faces.TOP_K)
    _, rows = detector.detect(bgr)
    return np.empty((0, 15), np.float32) if rows is None else rows


def scenes():
    group = cv2.imread(str(MEDIA / "12_angry_men.jpg"))
    people = cv2.imread(str(MEDIA / "test_image.jpg"))
    fer = cv2.imread(str(sorted((MEDIA / "fer2013" / "test" / "happy").glob("*.jpg"))[0]))
    return {
        "group 960 px": cv2.resize(group, (960, 540), interpolation=cv2.INTER_AREA),
        "group 640x361 (not a multiple of 32)": cv2.resize(group, (640, 361), interpolation=cv2.INTER_AREA),
        "people 960 px": cv2.resize(people, (960, 720), interpolation=cv2.INTER_AREA),
        "people turned 30 degrees": cv2.warpAffine(
            cv2.resize(people, (640, 480)), cv2.getRotationMatrix2D((320, 240), 30, 1.0), (640, 480)),
        "a FER2013 face upscaled to 240 px": cv2.resize(fer, (240, 240), interpolation=cv2.INTER_LINEAR),
        "blank": np.full((480, 640, 3), 128, np.uint8),
    }


@pytest.mark.parametrize("threshold", [faces.SCORE_THRESHOLD, 0.3])
@pytest.mark.parametrize("scene", list(scenes()))
def test_onnx_runtime_finds_the_rows_opencv_finds(scene, threshold):
    bgr = scenes()[scene]
    expected = opencv_rows(bgr, threshold)
    got = yunet.get(faces.detector_path()).detect(bgr, threshold, faces.NMS_THRESHOLD, faces.TOP_K)
    assert got.shape == expected.shape, (len(got), len(expected))
    if len(expected):
        order = np.lexsort((expected[:, 1], expected[:, 0]))
        got_order = np.lexsort((got[:, 1], got[:, 0]))
        np.testing.assert_allclose(got[got_order], expected[order], atol=1e-3)  # pixels, and scores
    if scene.startswith("group 960"):
        assert len(got) == 10  # every face of 12_angry_men.jpg (benchmarks/compare_detectors)
    if scene == "blank":
        assert len(got) == 0


def test_the_site_detects_through_onnx_runtime_unless_told_otherwise(monkeypatch):
    bgr = scenes()["people 960 px"]
    monkeypatch.delenv("DETECTOR_ENGINE", raising=False)
    assert faces.detector_engine() == "onnx"
    calls = []
    real = yunet.YuNet.detect

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(yunet.YuNet, "detect", counting)
    by_onnx = faces.detect_with_landmarks(bgr, turns=faces.DETECT_TURNS)
    assert len(calls) == 3  # upright and the two turned views
    monkeypatch.setenv("DETECTOR_ENGINE", "opencv")
    assert faces.detector_engine() == "opencv"
    by_opencv = faces.detect_with_landmarks(bgr, turns=faces.DETECT_TURNS)
    assert len(calls) == 3
    assert [box for box, _, _ in by_onnx] == [box for box, _, _ in by_opencv]
    assert len(by_onnx) == 6


def test_a_detector_file_that_is_not_yunet_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / faces.DETECTOR_FILE
    bad.write_bytes(b"not an onnx file")
    monkeypatch.setattr(faces, "detector_path", lambda: bad)
    with pytest.raises(registry.ModelUnavailable, match="could not be loaded"):
        faces.detect_with_landmarks(np.full((240, 240, 3), 128, np.uint8))


def test_parts_run_side_by_side_give_what_one_after_the_other_gives(monkeypatch):
    """INFERENCE_PARALLEL: a photo's turned views and an ensemble's networks on side threads give
    the same detections and the same probabilities as one after the other."""
    from recognition.inference import engine

    tilted = scenes()["people turned 30 degrees"]
    ensemble = registry.get_model("face_ensemble")
    crops = np.stack([cv2.cvtColor(cv2.resize(tilted[100:300, 200:400], (48, 48)), cv2.COLOR_BGR2GRAY)] * 3)[..., None] / 255.0
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("INFERENCE_PARALLEL", threads)
        assert (engine.side_pool() is None) == (threads == "1")
        found = faces.detect_with_landmarks(tilted, turns=faces.DETECT_TURNS)
        detections = [(box, round(score, 6), np.round(np.asarray(lm), 3).tolist(), getattr(lm, "turn", None)) for box, score, lm in found]
        results[threads] = (detections, ensemble.predict_raw(crops.astype(np.float32)))
    assert results["1"][0] == results["2"][0]
    assert any(turn is not None for *_, turn in results["2"][0])  # a turned view found some of them
    np.testing.assert_array_equal(results["1"][1], results["2"][1])  # summed in the same order
