"""People correct results (issue 18): per-item corrections through the pages and the API, the
served models' agreement with them, the dataset export (face crops as the model saw them, voice
windows as 16 kHz WAV, a manifest), the opt-in shared pool, and every bad input a clear 4xx.

Analyses are real: uploads through the upload service, analysed by the shipped models in-process.
"""

from __future__ import annotations

import csv
import io
import uuid
import zipfile

import numpy as np
import pytest
import soundfile
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from recognition.analyses import services
from recognition.analyses.models import Analysis
from recognition.corrections import dataset as correction_dataset
from recognition.corrections import selectors as correction_selectors
from recognition.corrections.models import Correction
from recognition.inference import faces
from recognition.inference.labels import FACE_EMOTIONS
from recognition.live import persistence
from recognition.live.recorder import SessionRecorder
from tests.conftest import MEDIA

API = "/api/v1"


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def alice_api(user) -> APIClient:
    return api_for(user)


@pytest.fixture
def mallory_api(other_user) -> APIClient:
    return api_for(other_user)


# The first analysis of each file runs the served models for real; later uploads of the same
# bytes in this session take its outcome (the CPUs here are shared with model training).
_OUTCOMES: dict[str, dict] = {}
_FIELDS = ("result", "emotion", "confidence", "face_count", "models_used", "timings")


def analysed(owner, data: bytes, name: str) -> Analysis:
    analysis = services.create_analysis(owner=owner, upload=data, filename=name, enqueue=False)
    known = _OUTCOMES.get(analysis.sha256)
    if known is None:
        done = services.run_analysis(analysis_id=analysis.pk)
        assert done.status == "done", done.error
        _OUTCOMES[analysis.sha256] = {f: getattr(done, f) for f in _FIELDS}
        return done
    Analysis.objects.filter(pk=analysis.pk).update(status="done", progress=100, **known)
    return Analysis.objects.get(pk=analysis.pk)


@pytest.fixture
def photo(user, face_photo) -> Analysis:
    return analysed(user, face_photo, "me.jpg")


@pytest.fixture
def recording(user, speech_clip) -> Analysis:
    return analysed(user, speech_clip.read_bytes(), "happy.flac")


def other_label(item: dict) -> str:
    return next(c for c in item["classes"] if c != item["predicted"])


def put(client, analysis_id, item, body, **kw):
    return client.put(f"{API}/analyses/{analysis_id}/corrections/{item}/", body, format="json", **kw)


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:400]
    assert response["Content-Type"].startswith("application/json")
    return response.json()["error"]


_FRAMES: dict[int, dict] = {}


def live_session(owner, photo: bytes) -> Analysis:
    """A saved live session whose one frame is the photo, analysed as the live page does."""
    if len(photo) not in _FRAMES:
        _FRAMES[len(photo)] = faces.analyze_image(photo)
    recorder = SessionRecorder()
    recorder.add_frame(_FRAMES[len(photo)])
    return persistence.save_live_session(owner=owner, summary=recorder.summary())


# ----------------------------------------------------------------------------- items and corrections


def test_every_face_of_a_photo_is_an_item_with_the_models_answer(alice_api, photo):
    response = alice_api.get(f"{API}/analyses/{photo.pk}/corrections/")
    assert response.status_code == 200
    items = response.json()
    stored = photo.result["faces"]
    assert len(items) == len(stored) >= 1
    for n, (item, face) in enumerate(zip(items, stored, strict=True), start=1):
        assert item["item"] == f"face-{n}" and item["title"] == f"Face {n}" and item["task"] == "face"
        assert item["ref"] == {"box": face["box"]}
        assert item["predicted"] == face["emotion"] and item["confidence"] == face["confidence"]
        assert item["classes"] == list(FACE_EMOTIONS) and set(face["probabilities"]) == set(FACE_EMOTIONS)
        assert item["model"] == {k: photo.models_used["face"][k] for k in ("name", "version")}
        assert item["label"] is None and item["agreed"] is None


def test_set_change_and_clear_a_correction_through_the_api(alice_api, photo):
    first = alice_api.get(f"{API}/analyses/{photo.pk}/corrections/").json()[0]
    wrong = other_label(first)

    set_ = put(alice_api, photo.pk, "face-1", {"label": wrong})
    assert set_.status_code == 200
    assert set_.json()["label"] == wrong and set_.json()["agreed"] is False
    stored = Correction.objects.get(analysis=photo, item="face-1")
    assert (stored.owner_id, stored.label, stored.predicted, stored.task) == (photo.owner_id, wrong, first["predicted"], "face")
    assert stored.ref == {"box": photo.result["faces"][0]["box"]}
    assert stored.model_version == photo.models_used["face"]["version"]

    changed = put(alice_api, photo.pk, "face-1", {"label": first["predicted"]})
    assert changed.status_code == 200 and changed.json()["agreed"] is True
    assert Correction.objects.filter(analysis=photo).count() == 1
    assert Correction.objects.get(analysis=photo).label == first["predicted"]

    assert alice_api.delete(f"{API}/analyses/{photo.pk}/corrections/face-1/").status_code == 204
    assert not Correction.objects.filter(analysis=photo).exists()
    assert alice_api.delete(f"{API}/analyses/{photo.pk}/corrections/face-1/").status_code == 204  # idempotent
    assert alice_api.get(f"{API}/analyses/{photo.pk}/corrections/").json()[0]["label"] is None


def test_a_recording_has_the_whole_clip_and_each_window(alice_api, recording):
    items = alice_api.get(f"{API}/analyses/{recording.pk}/corrections/").json()
    windows = recording.result["windows"]
    assert [i["item"] for i in items] == ["recording"] + [f"window-{n}" for n in range(1, len(windows) + 1)]
    assert items[0]["predicted"] == recording.emotion and items[0]["task"] == "voice"
    assert items[0]["ref"] == {"start": 0.0, "end": recording.result["duration"]}
    assert items[1]["ref"] == {"start": windows[0]["start"], "end": windows[0]["end"]}
    assert "fearful" in items[0]["classes"] and "fear" not in items[0]["classes"]
    assert put(alice_api, recording.pk, "window-1", {"label": "sad"}).json()["label"] == "sad"


@pytest.fixture(scope="module")
def clip_bytes() -> bytes:
    from tests.video_media import make_video

    return make_video(seconds=1.0, speech=None)


def test_a_video_track_and_a_live_session_are_items(user, alice_api, face_photo, clip_bytes):
    clip = analysed(user, clip_bytes, "clip.mp4")
    items = alice_api.get(f"{API}/analyses/{clip.pk}/corrections/").json()
    tracks = clip.result["faces"]
    assert [i["item"] for i in items] == [f"track-{t['track']}" for t in tracks] and tracks
    frame_times = [p["t"] for p in clip.result["timeline"]]
    for item, track in zip(items, tracks, strict=True):
        assert item["ref"]["box"] == track["box"] and item["ref"]["t"] in frame_times
        assert item["predicted"] == track["emotion"]

    session = live_session(user, face_photo)
    (item,) = alice_api.get(f"{API}/analyses/{session.pk}/corrections/").json()
    assert item["item"] == "session" and item["predicted"] == session.emotion
    assert put(alice_api, session.pk, "session", {"label": "sad"}).status_code == 200


def test_the_result_page_has_a_labelled_form_per_item_that_sets_and_clears(alice_client, photo):
    page = alice_client.get(f"/analyses/{photo.pk}/").content.decode()
    assert 'id="corrections"' in page
    for n in range(1, len(photo.result["faces"]) + 1):
        assert f'<label class="visually-hidden" for="label-face-{n}">True emotion for Face {n}</label>' in page
        assert f'name="item" value="face-{n}"' in page
    predicted = photo.result["faces"][0]["emotion"]
    wrong = next(c for c in photo.result["faces"][0]["probabilities"] if c != predicted)

    saved = alice_client.post(f"/analyses/{photo.pk}/corrections/", {"item": "face-1", "label": wrong})
    assert saved.status_code == 302 and saved["Location"] == f"/analyses/{photo.pk}/#corrections"
    assert Correction.objects.get(analysis=photo, item="face-1").label == wrong
    page = alice_client.get(f"/analyses/{photo.pk}/").content.decode()
    assert f'<option value="{wrong}" selected>' in page and "corrected</span>" in page

    cleared = alice_client.post(f"/analyses/{photo.pk}/corrections/", {"item": "face-1", "label": ""})
    assert cleared.status_code == 302 and not Correction.objects.filter(analysis=photo).exists()


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("item", "body", "status"),
    [
        ("face-1", {"label": "joy"}, 400),  # no model has it
        ("face-1", {"label": "HAPPY"}, 400),
        ("face-1", {"label": ""}, 400),
        ("face-1", {"label": 3}, 400),
        ("face-1", {"label": None}, 400),
        ("face-1", {"label": ["happy"]}, 400),
        ("face-1", {}, 400),
        ("face-1", ["happy"], 400),
        ("face-1", {"label": "fearful"}, 409),  # the voice model's word: not this item's classes
        ("face-999", {"label": "happy"}, 404),
        ("window-1", {"label": "happy"}, 404),  # a photo has no windows
        ("face-0", {"label": "happy"}, 404),
        ("face-01", {"label": "happy"}, 404),
        ("<script>", {"label": "happy"}, 404),
        ("face-1'--", {"label": "happy"}, 404),
    ],
)
def test_bad_corrections_are_a_clear_4xx_and_change_nothing(alice_api, photo, item, body, status):
    put(alice_api, photo.pk, "face-1", {"label": photo.result["faces"][0]["emotion"]})
    before = list(Correction.objects.values_list("analysis", "item", "label", "updated"))
    error = assert_error(put(alice_api, photo.pk, item, body), status)
    assert error["status"] == status and error["message"]
    assert list(Correction.objects.values_list("analysis", "item", "label", "updated")) == before


def test_a_non_json_body_is_refused(alice_api, photo):
    response = alice_api.generic(
        "PUT", f"{API}/analyses/{photo.pk}/corrections/face-1/", b"label=happy", content_type="text/plain"
    )
    assert_error(response, 415)
    response = alice_api.generic(
        "PUT", f"{API}/analyses/{photo.pk}/corrections/face-1/", b'{"label": ', content_type="application/json"
    )
    assert_error(response, 400)
    assert not Correction.objects.exists()


def test_someone_elses_deleted_or_unfinished_analysis_is_404(user, alice_api, mallory_api, photo, face_photo):
    put(alice_api, photo.pk, "face-1", {"label": "sad"})
    for client in (mallory_api,):
        assert_error(client.get(f"{API}/analyses/{photo.pk}/corrections/"), 404)
        assert_error(put(client, photo.pk, "face-1", {"label": "happy"}), 404)
        assert_error(put(client, photo.pk, "face-1", {}), 404)  # not even the body is looked at
        assert_error(client.delete(f"{API}/analyses/{photo.pk}/corrections/face-1/"), 404)
    assert Correction.objects.get(analysis=photo).label == "sad"

    queued = services.create_analysis(owner=user, upload=face_photo, filename="later.jpg", enqueue=False)
    assert alice_api.get(f"{API}/analyses/{queued.pk}/corrections/").json() == []
    assert_error(put(alice_api, queued.pk, "face-1", {"label": "happy"}), 404)

    gone = photo.pk
    services.delete_analysis(owner=user, analysis_id=gone)
    assert_error(put(alice_api, gone, "face-1", {"label": "happy"}), 404)
    assert_error(alice_api.get(f"{API}/analyses/{gone}/corrections/"), 404)
    assert not Correction.objects.exists()  # deleted with the analysis


def test_page_form_bad_input_is_4xx(alice_client, client, other_user, photo):
    bad = alice_client.post(f"/analyses/{photo.pk}/corrections/", {"item": "face-1", "label": "joy"})
    assert bad.status_code == 400 and "Choose one of the model" in bad.content.decode()
    assert alice_client.post(f"/analyses/{photo.pk}/corrections/", {"item": "face-9", "label": "sad"}).status_code == 404
    assert alice_client.post(f"/analyses/{photo.pk}/corrections/", {"label": "sad"}).status_code == 400
    assert alice_client.get(f"/analyses/{photo.pk}/corrections/").status_code == 405
    client.force_login(other_user)
    assert client.post(f"/analyses/{photo.pk}/corrections/", {"item": "face-1", "label": "sad"}).status_code == 404
    assert not Correction.objects.exists()


def test_delete_all_my_data_removes_the_corrections(user, alice_api, alice_client, photo, recording):
    put(alice_api, photo.pk, "face-1", {"label": "sad"})
    put(alice_api, recording.pk, "recording", {"label": "calm"})
    assert Correction.objects.filter(owner=user).count() == 2
    assert alice_client.post("/account/delete-data/").status_code == 302
    assert not Correction.objects.exists()


# ----------------------------------------------------------------------------- agreement


def test_agreement_per_class_and_model_version_over_ones_own_corrections(
    user, other_user, alice_api, mallory_api, alice_client, photo, recording, face_photo
):
    faces_ = photo.result["faces"]
    predicted = faces_[0]["emotion"]
    wrong = next(c for c in faces_[0]["probabilities"] if c != predicted)
    put(alice_api, photo.pk, "face-1", {"label": predicted})  # agrees
    put(alice_api, recording.pk, "recording", {"label": "calm" if recording.emotion != "calm" else "sad"})  # disagrees
    if len(faces_) > 1:
        put(alice_api, photo.pk, "face-2", {"label": next(c for c in faces_[1]["probabilities"] if c != faces_[1]["emotion"])})
    n = 1 + 1 + (len(faces_) > 1)
    theirs = analysed(other_user, face_photo, "theirs.jpg")
    put(mallory_api, theirs.pk, "face-1", {"label": wrong})  # not alice's: never counted for her

    stats = alice_api.get(f"{API}/stats/").json()["corrections"]
    assert (stats["n"], stats["agreed"]) == (n, 1) and stats["accuracy"] == round(1 / n, 4)
    assert stats["by_task"]["voice"] == {"n": 1, "agreed": 0, "accuracy": 0.0}
    assert stats["by_task"]["face"]["n"] == n - 1 and stats["by_task"]["face"]["agreed"] == 1
    face_row = next(r for r in stats["per_class"] if r["task"] == "face" and r["label"] == predicted)
    assert face_row["agreed"] >= 1
    assert sum(r["n"] for r in stats["per_class"]) == n
    models = {(m["task"], m["name"], m["version"]): m for m in stats["by_model"]}
    face_model = photo.models_used["face"]
    entry = models[("face", face_model["name"], face_model["version"])]
    assert entry["n"] == n - 1 and entry["per_class"][predicted]["agreed"] >= 1
    assert ("voice", recording.models_used["voice"]["name"], recording.models_used["voice"]["version"]) in models

    mallory = mallory_api.get(f"{API}/stats/").json()["corrections"]
    assert (mallory["n"], mallory["agreed"]) == (1, 0)

    dashboard = alice_client.get("/dashboard/").content.decode()
    assert "Model agreement with your corrections" in dashboard
    assert f"the model agreed with 1 of your {n} corrections" in dashboard
    assert face_model["version"] in dashboard


def test_a_retrained_model_is_counted_apart(user, alice_api, photo):
    """Corrections keep the version that made the prediction: a newer model's results show up
    as their own row, so a person sees how a retrained model does on their data."""
    put(alice_api, photo.pk, "face-1", {"label": photo.result["faces"][0]["emotion"]})
    newer = Analysis.objects.get(pk=photo.pk)
    newer.pk, newer.uid = None, uuid.uuid4()
    newer.models_used = {"face": {"name": "face_vgg", "version": "2099.01.01"}}
    newer.save()
    put(alice_api, newer.pk, "face-1", {"label": next(c for c in photo.result["faces"][0]["probabilities"] if c != photo.result["faces"][0]["emotion"])})
    by_model = {m["version"]: m for m in alice_api.get(f"{API}/stats/").json()["corrections"]["by_model"]}
    assert by_model["2099.01.01"]["accuracy"] == 0.0
    assert by_model[photo.models_used["face"]["version"]]["accuracy"] == 1.0


# ----------------------------------------------------------------------------- dataset export


def read_zip(response) -> tuple[zipfile.ZipFile, list[dict]]:
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="emotionsite-corrections-')
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    return archive, rows


def test_export_has_face_crops_as_the_model_saw_them_and_voice_windows(
    user, other_user, alice_api, mallory_api, alice_client, photo, recording, face_photo
):
    face = photo.result["faces"][0]
    wrong = next(c for c in face["probabilities"] if c != face["emotion"])
    put(alice_api, photo.pk, "face-1", {"label": wrong})
    put(alice_api, recording.pk, "window-1", {"label": "calm"})
    put(alice_api, recording.pk, "recording", {"label": recording.emotion})
    session = live_session(user, face_photo)
    put(alice_api, session.pk, "session", {"label": "sad"})  # no media: counted, not exported
    theirs = analysed(other_user, face_photo, "theirs.jpg")
    put(mallory_api, theirs.pk, "face-1", {"label": "fear"})

    archive, rows = read_zip(alice_api.get(f"{API}/corrections/export.zip"))
    names = set(archive.namelist())
    crop_path = f"face/{wrong}/{photo.pk}-face-1.png"
    assert names == {crop_path, f"voice/calm/{recording.pk}-window-1.wav",
                     f"voice/{recording.emotion}/{recording.pk}-recording.wav", "manifest.csv", "README.txt"}
    assert "1 corrected item(s) had nothing to export" in archive.read("README.txt").decode()
    assert not any(str(theirs.pk) + "-" in n for n in names)

    by_path = {r["path"]: r for r in rows}
    row = by_path[crop_path]
    assert (row["task"], row["analysis"], row["item"], row["label"], row["predicted"]) == ("face", str(photo.pk), "face-1", wrong, face["emotion"])
    assert (row["model"], row["version"]) == (photo.models_used["face"]["name"], photo.models_used["face"]["version"])
    assert row["box"] == " ".join(str(v) for v in face["box"])

    import cv2

    crop = cv2.imdecode(np.frombuffer(archive.read(crop_path), np.uint8), cv2.IMREAD_UNCHANGED)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8  # grey, FER2013's size
    # The very input the served model classified: its answer on the exported crop is the stored one.
    again = faces.classify_faces([crop])[0]
    stored = np.array([face["probabilities"][c] for c in FACE_EMOTIONS])  # the model's class order
    assert np.allclose(again, stored, atol=2e-3)

    window = recording.result["windows"][0]
    signal, rate = soundfile.read(io.BytesIO(archive.read(f"voice/calm/{recording.pk}-window-1.wav")))
    assert rate == 16000 and signal.ndim == 1
    assert abs(len(signal) / rate - (window["end"] - window["start"])) < 0.01
    whole, _ = soundfile.read(io.BytesIO(archive.read(f"voice/{recording.emotion}/{recording.pk}-recording.wav")))
    assert abs(len(whole) / 16000 - recording.result["duration"]) < 0.01
    assert by_path[f"voice/calm/{recording.pk}-window-1.wav"]["start"] == str(window["start"])

    page_archive, page_rows = read_zip(alice_client.get("/corrections/export.zip"))
    assert set(page_archive.namelist()) == names and page_rows == rows
    page = alice_client.get("/corrections/").content.decode()
    assert "Download dataset (zip)" in page and f"{photo.pk}/#corrections" in page


def test_a_video_tracks_crop_is_the_frame_the_model_saw(user, alice_api, clip_bytes):
    clip = analysed(user, clip_bytes, "clip.mp4")
    item = alice_api.get(f"{API}/analyses/{clip.pk}/corrections/").json()[0]
    put(alice_api, clip.pk, item["item"], {"label": "neutral"})
    archive, rows = read_zip(alice_api.get(f"{API}/corrections/export.zip"))
    path = f"face/neutral/{clip.pk}-{item['item']}.png"
    assert [r["path"] for r in rows] == [path] and rows[0]["t"] == str(item["ref"]["t"])
    import cv2

    crop = cv2.imdecode(np.frombuffer(archive.read(path), np.uint8), cv2.IMREAD_UNCHANGED)
    point = next(p for p in clip.result["timeline"] if p["t"] == item["ref"]["t"])
    seen = next(f for f in point["faces"] if f["track"] == item["ref"]["track"])
    assert crop.shape == (48, 48)
    stored = np.array([seen["probabilities"][c] for c in FACE_EMOTIONS])
    assert np.allclose(faces.classify_faces([crop])[0], stored, atol=2e-3)


def test_an_export_with_no_corrections_is_an_empty_dataset(alice_api):
    archive, rows = read_zip(alice_api.get(f"{API}/corrections/export.zip"))
    assert rows == [] and set(archive.namelist()) == {"manifest.csv", "README.txt"}


def test_the_corrections_list_is_paginated_and_only_ones_own(alice_api, mallory_api, photo, recording):
    put(alice_api, photo.pk, "face-1", {"label": "sad"})
    put(alice_api, recording.pk, "window-1", {"label": "calm"})
    body = alice_api.get(f"{API}/corrections/?page_size=1").json()
    assert body["count"] == 2 and len(body["results"]) == 1
    newest = body["results"][0]
    assert (newest["analysis"], newest["item"], newest["label"], newest["kind"]) == (recording.pk, "window-1", "calm", "audio")
    assert mallory_api.get(f"{API}/corrections/").json()["count"] == 0
    assert_error(alice_api.get(f"{API}/corrections/?page=9"), 404)
    assert_error(alice_api.get(f"{API}/corrections/?page_size=x"), 400)


# ----------------------------------------------------------------------------- shared pool


def test_sharing_is_off_by_default_and_controls_the_pool_export(
    user, other_user, alice_api, mallory_api, alice_client, photo, face_photo, tmp_path
):
    put(alice_api, photo.pk, "face-1", {"label": "sad"})
    theirs = analysed(other_user, face_photo, "theirs.jpg")
    put(mallory_api, theirs.pk, "face-1", {"label": "fear"})
    assert alice_api.get(f"{API}/corrections/sharing/").json() == {"share": False}
    assert correction_dataset.pool_corrections() == []

    for bad in ({"share": "yes"}, {"share": 1}, {"share": None}, {}, ["true"]):
        assert_error(alice_api.put(f"{API}/corrections/sharing/", bad, format="json"), 400)
    assert alice_api.put(f"{API}/corrections/sharing/", {"share": True}, format="json").json() == {"share": True}
    assert [(c.analysis_id, c.item) for c in correction_dataset.pool_corrections()] == [(photo.pk, "face-1")]

    out = tmp_path / "pool"
    call_command("export_corrections", str(out), "--pool", stdout=io.StringIO())
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [f"face/sad/{photo.pk}-face-1.png"]
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert [r["label"] for r in rows] == ["sad"]

    # Turned off on the page: out of every later export.
    assert alice_client.post("/corrections/sharing/", {}).status_code == 302
    assert alice_api.get(f"{API}/corrections/sharing/").json() == {"share": False}
    zipped = tmp_path / "pool.zip"
    call_command("export_corrections", str(zipped), "--pool", stdout=io.StringIO())
    assert zipfile.ZipFile(zipped).namelist() == ["manifest.csv", "README.txt"]
    assert alice_client.post("/corrections/sharing/", {"share": "on"}).status_code == 302
    assert correction_selectors.sharing_of(user)
    page = alice_client.get("/corrections/").content.decode()
    assert '<input type="checkbox" name="share" id="id_share" aria-describedby="share-help" checked>' in page


def test_corrections_page_and_result_page_for_every_kind_render(alice_client, photo, recording):
    assert alice_client.get("/corrections/").status_code == 200
    page = alice_client.get(f"/analyses/{recording.pk}/").content.decode()
    assert 'for="label-recording"' in page and "Correct single windows" in page
    assert (MEDIA / "test_image.jpg").exists()
