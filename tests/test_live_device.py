"""Live sessions analysed on the person's device ("On this device", issue 31), server side: the
manifest and the model files the page downloads, the live page's CSP, and saving a session's
timeline through ``POST /api/v1/live-sessions/`` (numbers only, checked field by field, saved as
a server session is). In a real browser: tests/e2e/test_ondevice_live_browser.py."""

from __future__ import annotations

import copy
import hashlib
import json
import math

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from recognition.analyses import services
from recognition.analyses.live_sessions import SessionRecorder
from recognition.analyses.models import Analysis
from recognition.inference import registry

pytestmark = pytest.mark.django_db

URL = "/api/v1/live-sessions/"
CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
HAPPY = [0.02, 0.01, 0.02, 0.8, 0.1, 0.03, 0.02]
SAD = [0.05, 0.01, 0.1, 0.02, 0.12, 0.68, 0.02]


def served() -> dict:
    card = registry.load_card(registry.served_name("face_live"))
    return {"name": card["name"], "version": card["version"]}


def session(**over) -> dict:
    body = {
        "model": served(),
        "started": "2026-12-05T10:00:00+00:00",
        "duration": 3.5,
        "samples": [
            {"t": 0.1, "faces": [{"box": [10, 12, 80, 90], "probabilities": HAPPY}]},
            {"t": 0.9, "faces": [{"box": [11, 12, 80, 90], "probabilities": HAPPY},
                                 {"box": [300, 40, 20, 20], "probabilities": SAD, "too_small": True}]},
            {"t": 1.6, "faces": []},
            {"t": 2.4, "faces": [{"probabilities": SAD}]},
            {"t": 3.1, "faces": [{"box": [12, 13, 79, 88], "probabilities": HAPPY}]},
        ],
    }
    body.update(over)
    return body


@pytest.fixture
def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


# --- the manifest and the files --------------------------------------------------------------


def test_manifest_names_the_served_files_with_their_cards_sha256(alice_client):
    assert Client().get("/live/models.json").status_code == 302  # signed-in people only, like /live/
    response = alice_client.get("/live/models.json")
    assert response.status_code == 200
    body = response.json()
    name = registry.served_name("face_live")
    card = registry.load_card(name)
    assert body["model"]["name"] == name and body["model"]["version"] == card["version"]
    assert body["model"]["classes"] == CLASSES and body["model"]["tta"] == card.get("tta", [])
    members = card["members"] if card.get("kind") == "ensemble" else [{"name": name}]
    assert [m["name"] for m in body["members"]] == [m["name"] for m in members]
    for entry in (body["detector"], *body["members"]):
        data = b"".join(alice_client.get(entry["url"]).streaming_content)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
        assert entry["url"] == f"/live/models/{entry['sha256']}/{entry['file']}"
    for member, entry in zip(members, body["members"], strict=True):
        assert entry["sha256"] == registry.load_card(member["name"])["engine"]["sha256"]
    assert body["download_bytes"] == body["detector"]["size"] + sum(m["size"] for m in body["members"])


def test_model_files_are_cached_for_good_and_nothing_else_is_served(alice_client):
    detector = alice_client.get("/live/models.json").json()["detector"]
    response = alice_client.get(detector["url"])
    assert response.status_code == 200
    assert response["ETag"] == f'"{detector["sha256"]}"'
    assert "immutable" in response["Cache-Control"] and "max-age=31536000" in response["Cache-Control"]
    again = alice_client.get(detector["url"], HTTP_IF_NONE_MATCH=f'"{detector["sha256"]}"')
    assert again.status_code == 304 and not again.content
    other = "0" * 64
    for path in (f"/live/models/{other}/face_detection_yunet.onnx",  # wrong hash
                 f"/live/models/{detector['sha256']}/face_vgg.onnx",  # not a file of the manifest
                 f"/live/models/{detector['sha256']}/registry.json",
                 f"/live/models/{detector['sha256']}/..%2Fsettings.py"):  # fmt: skip
        assert alice_client.get(path).status_code == 404, path
    assert Client().get(detector["url"]).status_code == 302
    assert alice_client.post(detector["url"]).status_code == 405


def test_an_altered_model_file_is_not_offered(alice_client, settings, tmp_path):
    import shutil

    for item in registry.models_dir().iterdir():
        if item.suffix in (".json", ".md") or item.name in ("face_detection_yunet.onnx", "face_student_online.onnx"):
            shutil.copy(item, tmp_path / item.name)
    data = bytearray((tmp_path / "face_detection_yunet.onnx").read_bytes())
    data[-1] ^= 1
    (tmp_path / "face_detection_yunet.onnx").write_bytes(bytes(data))
    settings.MODELS_DIR = tmp_path
    response = alice_client.get("/live/models.json")
    assert response.status_code == 503 and "not available" in response.json()["error"]
    sha256 = hashlib.sha256((registry.models_dir() / "face_detection_yunet.onnx").read_bytes()).hexdigest()
    assert alice_client.get(f"/live/models/{sha256}/face_detection_yunet.onnx").status_code == 404


def test_only_the_live_page_may_compile_webassembly(alice_client):
    def script_src(path: str) -> list[str]:
        header = alice_client.get(path)["Content-Security-Policy"]
        return next(part.split()[1:] for part in header.split(";") if part.split()[0] == "script-src")

    live = script_src("/live/")
    assert "'wasm-unsafe-eval'" in live
    assert "'unsafe-eval'" not in live and "'unsafe-inline'" not in live
    assert "'wasm-unsafe-eval'" not in script_src("/upload/")


# --- saving a session ------------------------------------------------------------------------


def test_a_device_session_is_saved_like_a_server_session(api, user):
    response = api.post(URL, session(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    analysis = Analysis.objects.get(pk=body["id"])
    assert analysis.owner == user and analysis.kind == "live" and analysis.status == "done"
    assert body["url"] == f"/analyses/{analysis.pk}/" and body["api_url"] == f"/api/v1/analyses/{analysis.pk}/"
    assert analysis.models_used == {"face": served()}
    assert analysis.emotion == "happy" and analysis.face_count == 2
    result = analysis.result
    assert result["analysed_on"] == "device" and result["duration"] == 3.5
    assert result["frames"] == 5 and result["frames_with_faces"] == 4
    # the too-small face is counted, not read: 3 happy readings and 1 sad
    assert {k: v for k, v in result["distribution"].items() if v} == {"happy": 0.75, "sad": 0.25}
    assert [p["t"] for p in result["timeline"]] == [0, 1, 2, 3]
    assert [p["emotion"] for p in result["timeline"]] == ["happy", None, "sad", "happy"]
    assert analysis.started.isoformat() == "2026-12-05T10:00:00+00:00"

    # The same faces through the live socket's recorder give the same summary (one save path).
    recorder = SessionRecorder()
    for sample in session()["samples"]:
        faces = [{"box": f.get("box", [0, 0, 0, 0]), "too_small": f.get("too_small", False),
                  "emotion": CLASSES[f["probabilities"].index(max(f["probabilities"]))],
                  "confidence": max(f["probabilities"]),
                  "probabilities": dict(zip(CLASSES, f["probabilities"], strict=True))} for f in sample["faces"]]  # fmt: skip
        recorder.add_frame({"faces": faces, "server_ms": 10.0}, at=sample["t"])
    server = services.save_live_session(owner=user, summary=recorder.summary())
    same = ("frames", "frames_with_faces", "faces_max", "emotion", "confidence", "distribution", "probabilities", "timeline")
    assert {k: server.result[k] for k in same} == {k: result[k] for k in same}
    assert set(server.result) == set(result) - {"analysed_on"}

    # In the person's history: the API list and the pages.
    listed = api.get("/api/v1/analyses/", {"kind": "live"}).json()["results"]
    assert analysis.pk in [item["id"] for item in listed]
    page = APIClient()
    page.force_login(user)
    assert f"/analyses/{analysis.pk}/" in page.get("/history/").content.decode()
    assert page.get(f"/analyses/{analysis.pk}/").status_code == 200


def test_the_page_saves_with_its_session_and_csrf_token(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(URL, session(), format="json").status_code == 403  # no CSRF token
    client.get("/live/")
    token = client.cookies["csrftoken"].value
    response = client.post(URL, session(), format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    assert APIClient().post(URL, session(), format="json").status_code == 401


def _bad_sessions():
    def with_sample(i, **face):
        body = session()
        body["samples"][i]["faces"][0].update(face)
        return body

    wrong_order = session()
    wrong_order["samples"][2]["t"] = 0.5
    too_many = session(samples=[{"t": 0.0, "faces": []}] * (services.DEVICE_MAX_SAMPLES + 1), duration=10)
    crowded = session(samples=[{"t": 0.0, "faces": [{"probabilities": HAPPY}] * (services.DEVICE_MAX_FACES_PER_SAMPLE + 1)}])
    return {
        "not an object": [1, 2, 3],
        "unknown field": session(frames="jpeg"),
        "image in a sample": session(samples=[{"t": 0, "faces": [], "image": "data:image/jpeg;base64,/9j/"}]),
        "image in a face": with_sample(0, crop="/9j/4AAQ"),
        "other model": session(model={"name": "face_vgg", "version": served()["version"]}),
        "other version": session(model={"name": served()["name"], "version": "1999.01.01"}),
        "model not an object": session(model="face_student_live"),
        "no duration": {k: v for k, v in session().items() if k != "duration"},
        "negative duration": session(duration=-1),
        "duration a string": session(duration="3.5"),
        "duration true": session(duration=True),
        "too long": session(duration=10 * 24 * 3600),
        "negative time": with_sample(0) | {"samples": [{"t": -0.1, "faces": []}]},
        "time past the end": session(duration=1.0),
        "time goes back": wrong_order,
        "time missing": session(samples=[{"faces": []}]),
        "samples not a list": session(samples={"t": 0}),
        "too many samples": too_many,
        "too many faces": crowded,
        "six probabilities": with_sample(0, probabilities=HAPPY[:6]),
        "probabilities as a dict": with_sample(0, probabilities=dict(zip(CLASSES, HAPPY, strict=True))),
        "probabilities do not sum to 1": with_sample(0, probabilities=[0.5] * 7),
        "a negative probability": with_sample(0, probabilities=[-0.2, 0.2, 0.02, 0.8, 0.1, 0.06, 0.02]),
        "a probability as a string": with_sample(0, probabilities=["0.8", 0.2, 0, 0, 0, 0, 0]),
        "a null probability": with_sample(0, probabilities=[None, 0.2, 0, 0.8, 0, 0, 0]),
        "box of three": with_sample(0, box=[1, 2, 3]),
        "negative box": with_sample(0, box=[-5, 2, 3, 4]),
        "too_small not a boolean": with_sample(0, too_small="yes"),
        "started naive": session(started="2026-12-05T10:00:00"),
        "started junk": session(started="yesterday"),
        "started in the future": session(started="2999-01-01T00:00:00+00:00"),
        "started a number": session(started=17),
    }


@pytest.mark.parametrize("name", list(_bad_sessions()))
def test_a_bad_session_is_refused_with_400_and_nothing_is_saved(api, name):
    body = _bad_sessions()[name]
    response = api.post(URL, body, format="json")
    assert response.status_code == 400, (name, response.status_code, response.content[:300])
    error = response.json()["error"]
    assert error["status"] == 400 and error["message"], error
    assert not Analysis.objects.exists()


@pytest.mark.parametrize(
    "raw",
    ['{"duration": NaN}', '{"duration": Infinity}', "{", "", "null", '"text"', "[" * 50000,
     json.dumps(session()).replace("0.8", "NaN", 1)],
)  # fmt: skip
def test_bodies_that_are_not_json_numbers_are_refused_with_400(api, raw):
    response = api.post(URL, raw, content_type="application/json")
    assert response.status_code == 400, (raw[:40], response.status_code)
    assert not Analysis.objects.exists()


def test_a_non_finite_number_is_refused_even_past_the_parser(user):
    body = session()
    body["samples"][0]["faces"][0]["probabilities"] = [math.nan] * 7
    with pytest.raises(services.DeviceSessionRejected):
        services.save_device_session(owner=user, data=copy.deepcopy(body))
    assert not Analysis.objects.exists()


def test_oversized_bodies_and_other_types_are_refused(api, settings):
    settings.LIVE_DEVICE_MAX_BODY_BYTES = 1000
    response = api.post(URL, session(samples=[{"t": 0.0, "faces": [{"probabilities": HAPPY}]}] * 40), format="json")
    assert response.status_code == 413
    settings.LIVE_DEVICE_MAX_BODY_BYTES = 3 * 1024 * 1024
    response = api.post(URL, {"model": "x"}, format="multipart")
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"
    assert api.get(URL).status_code == 405
    assert not Analysis.objects.exists()
