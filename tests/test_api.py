"""HTTP contract of the REST API v1: every route, auth, ownership (404), error statuses, ?wait.

The logic behind the routes (sniffing, inference, selectors) is tested in the services' tests;
here each route is checked for status codes, shapes and who may see what. Analyses are made
through the real service with real media, without running inference, except in the ``?wait``
tests, which run the shipped models in-process (eager Celery, transactional database).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.storage import default_storage
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from recognition.analyses import services
from recognition.analyses.models import Analysis
from recognition.analyses.selectors import EXPORT_FIELDS
from recognition.inference import registry
from recognition.inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS

REPO = Path(__file__).resolve().parents[1]
API = "/api/v1"
ERROR_KEYS = {"status", "code", "message"}


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Throttle counters live in the cache: every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def token(user) -> str:
    return Token.objects.create(user=user).key


@pytest.fixture
def alice_api(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def mallory_api(other_user) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other_user).key}"
    )
    return client


@pytest.fixture
def alice_photo(user, face_photo) -> Analysis:
    """A stored, queued (not analysed) photo of alice's, made by the real upload service."""
    return services.create_analysis(
        owner=user, upload=face_photo, filename="me.jpg", enqueue=False
    )


@pytest.fixture
def mallory_photo(other_user, group_photo) -> Analysis:
    return services.create_analysis(
        owner=other_user, upload=group_photo, filename="them.jpg", enqueue=False
    )


def upload(
    client: APIClient,
    data: bytes,
    name: str = "upload.bin",
    wait: float | None = None,
    **extra,
):
    url = f"{API}/analyses/" + (f"?wait={wait}" if wait is not None else "")
    return client.post(url, {"file": _named(data, name)}, format="multipart", **extra)


def _named(data: bytes, name: str) -> io.BytesIO:
    fh = io.BytesIO(data)
    fh.name = name
    return fh


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is the API's JSON error with this status (and code)."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert ERROR_KEYS <= set(error) and error["status"] == status and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


# ----------------------------------------------------------------------------- tokens


def test_token_for_valid_credentials_is_used_as_authorization(api, user, password):
    response = api.post(
        f"{API}/auth/token/", {"username": "alice", "password": password}, format="json"
    )
    assert response.status_code == 200
    key = response.json()["token"]
    assert Token.objects.get(user=user).key == key
    # Same token on the next sign-in (until revoked), and it authenticates.
    again = api.post(
        f"{API}/auth/token/", {"username": "alice", "password": password}
    )  # form-encoded
    assert again.json()["token"] == key
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get(f"{API}/analyses/").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "nobody", "password": "x"},
    ],
)
def test_token_refused_for_bad_credentials(api, user, body):
    error = assert_error(
        api.post(f"{API}/auth/token/", body, format="json"), 400, "invalid_credentials"
    )
    assert "credentials" in error["message"]
    assert not Token.objects.exists()


def test_token_refused_for_inactive_user(api, user, password):
    user.is_active = False
    user.save()
    assert_error(
        api.post(f"{API}/auth/token/", {"username": "alice", "password": password}),
        400,
        "invalid_credentials",
    )


def test_token_request_missing_fields_lists_them(api):
    error = assert_error(
        api.post(f"{API}/auth/token/", {}, format="json"), 400, "invalid"
    )
    assert set(error["fields"]) == {"username", "password"}


def test_token_request_ignores_a_stale_token_header(api, user, password):
    api.credentials(HTTP_AUTHORIZATION="Token revoked-long-ago")
    response = api.post(
        f"{API}/auth/token/", {"username": "alice", "password": password}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("how", ["delete", "post-revoke"])
def test_revoked_token_stops_working_and_a_new_one_is_issued(
    alice_api, token, password, how
):
    assert alice_api.get(f"{API}/analyses/").status_code == 200
    if how == "delete":
        response = alice_api.delete(f"{API}/auth/token/")
    else:
        response = alice_api.post(f"{API}/auth/token/revoke/")
    assert response.status_code == 204
    assert not Token.objects.filter(key=token).exists()
    assert_error(alice_api.get(f"{API}/analyses/"), 401, "authentication_failed")
    fresh = (
        APIClient()
        .post(f"{API}/auth/token/", {"username": "alice", "password": password})
        .json()["token"]
    )
    assert fresh != token


def test_revoke_needs_authentication(api):
    assert_error(api.delete(f"{API}/auth/token/"), 401, "not_authenticated")
    assert_error(api.post(f"{API}/auth/token/revoke/"), 401, "not_authenticated")


# ----------------------------------------------------------------------------- authentication


PROTECTED = [
    ("get", "/analyses/"),
    ("post", "/analyses/"),
    ("get", "/analyses/1/"),
    ("delete", "/analyses/1/"),
    ("get", "/analyses/1/media/"),
    ("get", "/export.csv"),
    ("get", "/export.json"),
    ("get", "/models/"),
    ("get", "/stats/"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "header", [None, "Token not-a-real-token", "Bearer abc", "Token"]
)
def test_every_route_needs_a_valid_token(db, api, method, path, header):
    if header:
        api.credentials(HTTP_AUTHORIZATION=header)
    error = assert_error(getattr(api, method)(API + path), 401)
    assert error["code"] in {"not_authenticated", "authentication_failed"}
    if header is None:
        assert error["code"] == "not_authenticated"


def test_401_names_the_token_scheme(db, api):
    assert api.get(f"{API}/analyses/")["WWW-Authenticate"] == "Token"


def test_session_authentication_works_for_the_sites_pages(alice_client, alice_photo):
    response = alice_client.get(f"{API}/analyses/")
    assert response.status_code == 200
    assert [a["id"] for a in response.json()["results"]] == [alice_photo.pk]


def test_session_writes_need_the_csrf_token(client, user, face_photo):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post(f"{API}/analyses/", {"file": _named(face_photo, "a.jpg")})
    error = assert_error(response, 403, "permission_denied")
    assert "CSRF" in error["message"]
    assert not Analysis.objects.exists()


# ----------------------------------------------------------------------------- analyses: list


def test_list_is_paginated_and_only_the_owners(
    alice_api, alice_photo, mallory_photo, user, face_photo
):
    second = services.create_analysis(
        owner=user, upload=face_photo, filename="two.jpg", enqueue=False
    )
    response = alice_api.get(f"{API}/analyses/", {"page_size": 1})
    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 2 and page["next"] and page["previous"] is None
    assert [a["id"] for a in page["results"]] == [second.pk]  # newest first
    rest = alice_api.get(page["next"]).json()
    assert [a["id"] for a in rest["results"]] == [alice_photo.pk]


def test_list_filters_by_kind_emotion_and_date(
    alice_api, alice_photo, user, speech_clip
):
    clip = services.create_analysis(
        owner=user, upload=speech_clip.read_bytes(), filename="clip.flac", enqueue=False
    )
    Analysis.objects.filter(pk=clip.pk).update(
        emotion="sad", status=Analysis.Status.DONE
    )
    Analysis.objects.filter(pk=alice_photo.pk).update(
        emotion="happy", status=Analysis.Status.DONE
    )
    day = alice_photo.created.date().isoformat()

    def ids(**params):
        response = alice_api.get(f"{API}/analyses/", params)
        assert response.status_code == 200, response.content
        return [a["id"] for a in response.json()["results"]]

    assert ids(kind="audio") == [clip.pk]
    assert ids(kind="image") == [alice_photo.pk]
    assert ids(emotion="happy") == [alice_photo.pk]
    assert ids(emotion="angry") == []
    assert set(ids(date_from=day, date_to=day)) == {clip.pk, alice_photo.pk}
    assert ids(date_from="2999-01-01") == []
    assert ids(date_to="2000-01-01") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "podcast"}, "kind"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "2025-02-01", "date_to": "2025-01-01"}, "date_to"),
    ],
)
def test_list_rejects_bad_filters(alice_api, params, field):
    error = assert_error(alice_api.get(f"{API}/analyses/", params), 400, "invalid")
    assert field in error["fields"]


def test_list_page_past_the_end_is_404(alice_api, alice_photo):
    assert_error(alice_api.get(f"{API}/analyses/", {"page": 9}), 404)


# ----------------------------------------------------------------------------- analyses: one


def test_detail_shape(alice_api, alice_photo, face_photo):
    response = alice_api.get(f"{API}/analyses/{alice_photo.pk}/")
    assert response.status_code == 200
    data = response.json()
    for key in (
        "id",
        "url",
        "kind",
        "status",
        "error",
        "created",
        "finished",
        "models",
        "result",
        "media_url",
    ):
        assert key in data
    assert (
        data["id"] == alice_photo.pk
        and data["kind"] == "image"
        and data["status"] == "queued"
    )
    assert data["url"] == f"http://testserver{API}/analyses/{alice_photo.pk}/"
    assert (
        data["media_url"] == f"http://testserver{API}/analyses/{alice_photo.pk}/media/"
    )
    assert data["original_name"] == "me.jpg" and data["size"] == len(face_photo)
    assert data["finished"] is None and data["result"] == {}


def test_audio_result_is_nested_under_voice(alice_api, user, speech_clip):
    """Whatever the kind, clients read result.faces / result.voice."""
    clip = services.create_analysis(
        owner=user, upload=speech_clip.read_bytes(), enqueue=False
    )
    stored = {"emotion": "happy", "confidence": 0.6, "probabilities": {e: 1 / 8 for e in VOICE_EMOTIONS},
              "speech": True, "duration": 3.5, "windows": [], "model": {"name": "v", "version": "1"}}  # fmt: skip
    Analysis.objects.filter(pk=clip.pk).update(
        result=stored, status=Analysis.Status.DONE
    )
    result = alice_api.get(f"{API}/analyses/{clip.pk}/").json()["result"]
    assert result == {"voice": stored}


def test_someone_elses_analysis_is_404_everywhere(alice_api, mallory_photo):
    pk = mallory_photo.pk
    assert_error(alice_api.get(f"{API}/analyses/{pk}/"), 404, "not_found")
    assert_error(alice_api.get(f"{API}/analyses/{pk}/media/"), 404, "not_found")
    assert_error(alice_api.delete(f"{API}/analyses/{pk}/"), 404, "not_found")
    assert Analysis.objects.filter(pk=pk).exists()
    assert default_storage.exists(mallory_photo.media.name)
    assert pk not in [
        a["id"] for a in alice_api.get(f"{API}/analyses/").json()["results"]
    ]


def test_missing_analysis_is_404(alice_api):
    assert_error(alice_api.get(f"{API}/analyses/999999/"), 404, "not_found")


def test_delete_removes_the_record_and_its_file(
    alice_api, alice_photo, django_capture_on_commit_callbacks
):
    name = alice_photo.media.name
    assert default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.delete(f"{API}/analyses/{alice_photo.pk}/")
    assert response.status_code == 204
    assert not Analysis.objects.filter(pk=alice_photo.pk).exists()
    assert not default_storage.exists(name)
    assert_error(alice_api.get(f"{API}/analyses/{alice_photo.pk}/"), 404)


def test_media_returns_the_uploaded_bytes(alice_api, alice_photo, face_photo):
    response = alice_api.get(
        f"{API}/analyses/{alice_photo.pk}/media/", HTTP_ACCEPT="image/*"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == face_photo
    assert response["X-Content-Type-Options"] == "nosniff"
    download = alice_api.get(
        f"{API}/analyses/{alice_photo.pk}/media/", {"download": "1"}
    )
    assert (
        download["Content-Disposition"].startswith("attachment")
        and "me.jpg" in download["Content-Disposition"]
    )


# ----------------------------------------------------------------------------- export, stats, models


def test_export_csv_and_json_hold_only_the_owners_rows(
    alice_api, alice_photo, mallory_photo
):
    response = alice_api.get(f"{API}/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(r["id"]) for r in rows] == [alice_photo.pk]
    assert rows[0]["original_name"] == "me.jpg" and rows[0]["kind"] == "image"
    assert (
        json.loads(rows[0]["result"]) == {}
    )  # structured columns are JSON, not Python reprs

    # the same spreadsheet-formula guard as the history page's download
    Analysis.objects.filter(pk=alice_photo.pk).update(original_name="=HYPERLINK(\"http://x\")")
    rows = list(csv.DictReader(io.StringIO(alice_api.get(f"{API}/export.csv").content.decode())))
    assert rows[0]["original_name"] == "'=HYPERLINK(\"http://x\")"

    response = alice_api.get(f"{API}/export.json")
    assert (
        response.status_code == 200 and response["Content-Type"] == "application/json"
    )
    analyses = response.json()["analyses"]
    assert [a["id"] for a in analyses] == [alice_photo.pk]
    assert analyses[0]["sha256"] == alice_photo.sha256


def test_export_with_no_analyses_is_empty(alice_api):
    assert alice_api.get(f"{API}/export.csv").content.decode().splitlines() == [
        ",".join(EXPORT_FIELDS)
    ]
    assert alice_api.get(f"{API}/export.json").json() == {"analyses": []}


def test_stats_count_only_the_owners_analyses(alice_api, alice_photo, mallory_photo):
    Analysis.objects.filter(pk=alice_photo.pk).update(
        status=Analysis.Status.DONE, emotion="happy", face_count=1
    )
    response = alice_api.get(f"{API}/stats/")
    assert response.status_code == 200
    stats = response.json()
    assert stats["total"] == 1 and stats["by_kind"] == {"image": 1}
    assert stats["emotions"] == {"happy": 1} and stats["faces"] == 1
    from recognition.api.serializers import StatsSerializer

    assert set(stats) == set(
        StatsSerializer().fields
    )  # the documented shape is the real one


def test_models_lists_the_served_models_with_their_card_metrics(alice_api):
    """Against the shipped models/registry.json and cards."""
    served = json.loads((registry.models_dir() / "registry.json").read_text())
    response = alice_api.get(f"{API}/models/")
    assert response.status_code == 200
    listed = {m["task"]: m for m in response.json()}
    assert set(listed) == set(served)
    for task, name in served.items():
        card = registry.load_card(name)
        entry = listed[task]
        assert entry["name"] == name and entry["available"] is True, entry
        assert (
            entry["version"] == str(card["version"])
            and entry["classes"] == card["classes"]
        )
        test = card["metrics"][entry["metrics_split"]]
        assert (
            entry["accuracy"] == pytest.approx(test["accuracy"])
            and 0 < entry["accuracy"] <= 1
        )
        assert entry["ece"] == pytest.approx(test["ece"])
    assert listed["face"]["classes"] == list(FACE_EMOTIONS)
    assert listed["face"]["metrics_split"] == "test"


def test_models_marks_unreadable_cards_unavailable(alice_api, settings, tmp_path):
    (tmp_path / "registry.json").write_text(
        json.dumps({"face": "face_missing", "voice": "voice_ok"})
    )
    registry.write_card({"name": "voice_ok", "task": "voice", "version": "3", "classes": list(VOICE_EMOTIONS),
                         "file": "voice_ok.keras", "metrics": {"test": {"accuracy": 0.5, "ece": 0.04, "n": 10}}},
                        tmp_path)  # fmt: skip
    (tmp_path / "voice_ok.keras").write_bytes(b"not inspected by this endpoint")
    settings.MODELS_DIR = tmp_path
    listed = {m["task"]: m for m in alice_api.get(f"{API}/models/").json()}
    assert (
        listed["face"]["available"] is False
        and "face_missing" in listed["face"]["detail"]
    )
    assert listed["voice"]["available"] is True
    assert (
        listed["voice"]["accuracy"],
        listed["voice"]["ece"],
        listed["voice"]["test_size"],
    ) == (0.5, 0.04, 10)
    assert listed["voice"]["metrics_split"] == "test"
    # A card without a test split shows the split its numbers come from.
    registry.write_card({"name": "voice_new", "task": "voice", "version": "4", "classes": list(VOICE_EMOTIONS),
                         "metrics": {"inner_validation": {"accuracy": 0.33, "ece": 0.1, "n": 240}}}, tmp_path)  # fmt: skip
    (tmp_path / "voice_new.keras").write_bytes(b"-")
    (tmp_path / "registry.json").write_text(json.dumps({"voice": "voice_new"}))
    (entry,) = alice_api.get(f"{API}/models/").json()
    assert (entry["name"], entry["accuracy"], entry["metrics_split"]) == (
        "voice_new",
        0.33,
        "inner_validation",
    )


# ----------------------------------------------------------------------------- upload errors


def test_upload_without_a_file_is_400(alice_api):
    error = assert_error(
        alice_api.post(f"{API}/analyses/", {}, format="multipart"), 400, "invalid"
    )
    assert "file" in error["fields"]


def test_empty_file_is_400(alice_api):
    assert_error(upload(alice_api, b"", "empty.jpg"), 400)
    assert not Analysis.objects.exists()


def test_corrupt_image_is_400_and_leaves_nothing(alice_api, face_photo, settings):
    error = assert_error(
        upload(alice_api, face_photo[:4000], "cut.jpg"), 400, "invalid_media"
    )
    assert "damaged" in error["message"] or "truncated" in error["message"]
    assert not Analysis.objects.exists()
    assert not list(Path(settings.MEDIA_ROOT).rglob("*.*"))


def test_wrong_type_is_415(alice_api, settings):
    error = assert_error(
        upload(alice_api, b"#!/bin/sh\necho not a photo\n" * 20, "photo.jpg"), 415
    )
    assert error["code"] == "unsupported_media_type"
    assert not Analysis.objects.exists()


def test_non_multipart_upload_is_415(alice_api):
    response = alice_api.post(f"{API}/analyses/", {"file": "x"}, format="json")
    assert_error(response, 415, "unsupported_media_type")


def test_oversized_file_is_413_from_the_service(alice_api, face_photo, settings):
    settings.MAX_UPLOAD_BYTES = (
        len(face_photo) - 1
    )  # within the multipart slack: the service decides
    error = assert_error(upload(alice_api, face_photo, "big.jpg"), 413, "too_large")
    assert "too large" in error["message"]
    assert not Analysis.objects.exists()


def test_oversized_request_is_413_before_reading_it(alice_api, face_photo, settings):
    settings.MAX_UPLOAD_BYTES = (
        1000  # face_photo is ~500 kB: over limit + slack by Content-Length
    )
    assert_error(upload(alice_api, face_photo, "big.jpg"), 413, "too_large")
    assert not Analysis.objects.exists()


def test_oversized_body_elsewhere_is_413(api, user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = {"username": "alice", "password": "x" * 200}
    assert_error(api.post(f"{API}/auth/token/", body, format="json"), 413, "too_large")


def test_unexpected_errors_are_json_500(caplog):
    from recognition.api.exceptions import api_exception_handler

    response = api_exception_handler(RuntimeError("a bug"), {})
    assert response.status_code == 500
    assert response.data == {
        "error": {
            "status": 500,
            "code": "server_error",
            "message": "Internal server error.",
        }
    }
    assert "a bug" in caplog.text


@pytest.mark.parametrize("wait", ["soon", "-1"])
def test_bad_wait_is_400(alice_api, face_photo, wait):
    error = assert_error(
        upload(alice_api, face_photo, "a.jpg", wait=wait), 400, "invalid"
    )
    assert "wait" in error["fields"]
    assert not Analysis.objects.exists()


def test_upload_without_wait_is_202_with_where_to_look(
    alice_api, face_photo, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(alice_api, face_photo, "me.jpg")
    assert response.status_code == 202
    data = response.json()
    assert data["status"] == "queued" and data["kind"] == "image"
    assert (
        response["Location"]
        == data["url"]
        == f"http://testserver{API}/analyses/{data['id']}/"
    )
    # the analysis is enqueued once, when the upload commits (the other callback counts it for /metrics)
    enqueues = [cb for cb in callbacks if "enqueue_analysis" in cb.__code__.co_names]
    assert len(enqueues) == 1 and len(callbacks) == 2
    assert alice_api.get(data["url"]).json()["id"] == data["id"]


def test_wait_that_runs_out_answers_202(alice_api, face_photo, settings):
    """Inside the test transaction the task never starts, so a short wait expires."""
    response = upload(alice_api, face_photo, "me.jpg", wait=0.3)
    assert response.status_code == 202 and response.json()["status"] == "queued"


def test_method_not_allowed_is_405(alice_api, alice_photo):
    error = assert_error(
        alice_api.put(f"{API}/analyses/{alice_photo.pk}/", {}),
        405,
        "method_not_allowed",
    )
    assert "PUT" in error["message"]
    assert_error(alice_api.patch(f"{API}/models/"), 405)


def test_unknown_api_path_is_json_404(alice_api):
    assert_error(alice_api.get(f"{API}/nothing-here/"), 404, "not_found")
    assert_error(
        alice_api.post(f"{API}/analyses"), 404, "not_found"
    )  # no slash: no HTML redirect page


# ----------------------------------------------------------------------------- throttling


def _rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            **rates,
        },
    }


def test_token_requests_are_throttled_per_client(api, user, password, settings):
    _rates(settings, token="3/min")
    for _ in range(3):
        assert (
            api.post(
                f"{API}/auth/token/", {"username": "alice", "password": "guess"}
            ).status_code
            == 400
        )
    response = api.post(
        f"{API}/auth/token/", {"username": "alice", "password": password}
    )
    error = assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert "available in" in error["message"]


def test_api_requests_are_throttled_per_user(alice_api, mallory_api, settings):
    _rates(settings, user="2/min")
    assert alice_api.get(f"{API}/stats/").status_code == 200
    assert alice_api.get(f"{API}/models/").status_code == 200
    assert_error(alice_api.get(f"{API}/stats/"), 429, "throttled")
    assert mallory_api.get(f"{API}/stats/").status_code == 200  # per user, not global


def test_uploads_have_their_own_rate(alice_api, face_photo, settings):
    _rates(settings, uploads="1/min")
    assert upload(alice_api, face_photo, "a.jpg").status_code == 202
    assert_error(upload(alice_api, face_photo, "b.jpg"), 429, "throttled")
    assert (
        alice_api.get(f"{API}/analyses/").status_code == 200
    )  # reads are not upload-limited
    assert Analysis.objects.count() == 1


def test_unauthenticated_requests_are_refused_before_throttling(api, settings, db):
    """Anonymous callers get 401 at once (the anon rate guards the public schema and docs)."""
    _rates(settings, anon="1/min")
    for _ in range(3):
        assert_error(api.get(f"{API}/stats/"), 401)


# ----------------------------------------------------------------------------- ?wait with the real models


def _probabilities_ok(probabilities: dict, labels) -> None:
    assert set(probabilities) == set(labels)
    assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-3)


@pytest.mark.django_db(transaction=True)
def test_wait_returns_201_with_the_faces_of_a_real_photo(alice_api, face_photo):
    response = upload(alice_api, face_photo, "test_image.jpg", wait=30)
    assert response.status_code == 201, response.content[:500]
    data = response.json()
    assert data["status"] == "done" and data["kind"] == "image" and data["error"] == ""
    assert data["finished"] and data["models"]["face"]["name"]
    faces = data["result"]["faces"]
    assert len(faces) >= 1
    for face in faces:
        x, y, w, h = face["box"]
        assert all(isinstance(v, int) for v in face["box"]) and w > 20 and h > 20
        assert 0 <= x < data["result"]["width"] and 0 <= y < data["result"]["height"]
        _probabilities_ok(face["probabilities"], FACE_EMOTIONS)
        assert face["emotion"] == max(
            face["probabilities"], key=face["probabilities"].get
        )
    # The same result is what GET returns later.
    assert alice_api.get(data["url"]).json()["result"] == data["result"]


@pytest.mark.django_db(transaction=True)
def test_wait_returns_201_with_the_voice_of_a_real_speech_clip(alice_api, speech_clip):
    response = upload(alice_api, speech_clip.read_bytes(), speech_clip.name, wait=30)
    assert response.status_code == 201, response.content[:500]
    data = response.json()
    assert data["status"] == "done" and data["kind"] == "audio"
    assert data["models"]["voice"]["name"]
    voice = data["result"]["voice"]
    assert voice["emotion"] in VOICE_EMOTIONS
    _probabilities_ok(voice["probabilities"], VOICE_EMOTIONS)
    assert voice["windows"] and all(w["end"] > w["start"] for w in voice["windows"])


# ----------------------------------------------------------------------------- docs/api.md examples, client


def _api_doc() -> str:
    """docs/api.md (the README links it): its examples are the ones people copy."""
    return (REPO / "docs" / "api.md").read_text()


def _doc_block(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", _api_doc(), re.DOTALL)
    assert blocks, f"no {language} block in docs/api.md"
    return blocks[0]


def _for_test_server(code: str, url: str, password: str) -> str:
    return code.replace("http://127.0.0.1:8000", url).replace("your-password", password)


@pytest.mark.django_db(transaction=True)
def test_api_doc_python_example_works_against_a_live_server(
    live_server, user, password, capsys, monkeypatch
):
    monkeypatch.chdir(REPO)
    namespace: dict = {}
    exec(  # noqa: S102 - running the documented example is the point of this test
        compile(
            _for_test_server(_doc_block("python"), live_server.url, password),
            "docs/api.md",
            "exec",
        ),
        namespace,
    )
    analysis = namespace["analysis"]
    assert analysis["status"] == "done" and analysis["result"]["faces"]
    printed = capsys.readouterr().out
    assert any(e in printed for e in FACE_EMOTIONS)


@pytest.mark.django_db(transaction=True)
def test_api_doc_curl_example_works_against_a_live_server(live_server, user, password):
    script = _for_test_server(_doc_block("sh"), live_server.url, password)
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    analysis = json.loads(
        run.stdout.strip().splitlines()[-1]
        if run.stdout.strip().startswith("{")
        else run.stdout
    )
    assert analysis["status"] == "done" and analysis["result"]["faces"]
    assert not Token.objects.filter(
        user=user
    ).exists()  # the example ends by revoking its token


@pytest.mark.django_db(transaction=True)
def test_command_line_client_against_a_live_server(
    live_server, user, password, capsys, speech_clip
):
    import emotionsite_client as client

    photo = REPO / "tests" / "media" / "test_image.jpg"
    code = client.main([str(photo), str(speech_clip), "--url", live_server.url, "--username", "alice",
                        "--password", password, "--wait", "30", "--json"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    image, audio = json.loads(out)
    assert image["status"] == "done" and image["result"]["faces"]
    assert (
        audio["status"] == "done"
        and audio["result"]["voice"]["emotion"] in VOICE_EMOTIONS
    )
    # Human summaries; a refused file sets the exit status without stopping the others.
    code = client.main([str(REPO / "README.md"), str(photo), "--url", live_server.url, "--username", "alice",
                        "--password", password, "--wait", "30"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "README.md: refused: 415 unsupported_media_type" in captured.err
    assert re.search(r"test_image\.jpg: done, \d+ faces?", captured.out)


@pytest.mark.django_db(transaction=True)
def test_command_line_client_reports_bad_credentials(live_server, user, capsys):
    import emotionsite_client as client

    code = client.main(
        [
            str(REPO / "README.md"),
            "--url",
            live_server.url,
            "--username",
            "alice",
            "--password",
            "no",
        ]
    )
    assert code == 2
    assert "cannot sign in: 400 invalid_credentials" in capsys.readouterr().err
