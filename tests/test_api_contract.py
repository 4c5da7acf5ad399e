"""What the schema-driven fuzzer found (issue 20), pinned as fast tests: parameters are validated
as their schema types say, every answer has the one JSON error shape, and the schema lists the
statuses and content types the API really answers with. tests/test_api_fuzz.py runs the fuzzer."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from recognition.analyses import media, services

API = "/api/v1"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice_api(user) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}"
    )
    return client


@pytest.fixture
def photo(user, face_photo):
    return services.create_analysis(
        owner=user, upload=face_photo, filename="me.jpg", enqueue=False
    )


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def assert_error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["status"] == status and error["code"] and error["message"]
    if field is not None:
        assert field in error["fields"], error
    return error


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page": 0}, "page"),
        ({"page": "last"}, "page"),
        ({"page": "5_0"}, "page"),
        ({"page": "1.0"}, "page"),
        ({"page": str(2**31)}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"page_size": "null"}, "page_size"),
        ({"kind": ""}, "kind"),
        ({"emotion": ""}, "emotion"),
        ({"emotion": "ha\x00ppy"}, "emotion"),
        ({"emotion": "Happy"}, "emotion"),
        ({"emotion": "happy\n"}, "emotion"),
        ({"emotion": " happy"}, "emotion"),
        ({"date_from": ""}, "date_from"),
        ({"date_from": "2026-1-1"}, "date_from"),
        ({"date_to": "2026-01-01\n"}, "date_to"),
        ({"date_from": "2026-02-02", "date_to": "2026-02-01"}, "date_to"),
    ],
)
def test_list_parameters_outside_their_schema_answer_400(alice_api, query, field):
    assert_error(alice_api.get(f"{API}/analyses/", query), 400, field)


def test_list_parameters_inside_their_schema_are_accepted(alice_api, photo):
    query = {
        "page": 1,
        "page_size": 100,
        "kind": "image",
        "date_from": "2000-01-01",
        "date_to": "2000-01-01",
    }
    assert alice_api.get(f"{API}/analyses/", query).json()["count"] == 0
    assert alice_api.get(f"{API}/analyses/", {"page_size": 1}).json()["count"] == 1
    for past_the_end in (2, 2**31 - 1):
        assert_error(alice_api.get(f"{API}/analyses/", {"page": past_the_end}), 404)


def test_upload_query_and_an_empty_body_answer_json_400(alice_api):
    for wait in ("", "1_0", " 5", "nan", "-1"):
        assert_error(
            alice_api.post(f"{API}/analyses/", QUERY_STRING=f"wait={wait}"), 400, "wait"
        )
    boundary = "c637e12e2b1a998d80d1b087531af51c"
    empty = alice_api.generic(
        "POST",
        f"{API}/analyses/",
        f"--{boundary}--\r\n",
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert_error(empty, 400, "file")


@pytest.mark.parametrize("value", ["null", "", "maybe", "yes", "on", "t"])
def test_download_must_be_a_boolean(alice_api, photo, value):
    assert_error(
        alice_api.get(f"{API}/analyses/{photo.pk}/media/", {"download": value}),
        400,
        "download",
    )


@pytest.mark.parametrize(
    ("value", "disposition"),
    [
        ("true", "attachment"),
        ("TRUE", "attachment"),
        ("1", "attachment"),
        ("false", "inline"),
        ("0", "inline"),
    ],
)
def test_download_values_and_the_served_type(alice_api, photo, value, disposition):
    response = alice_api.get(f"{API}/analyses/{photo.pk}/media/", {"download": value})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(disposition)
    assert (
        response["Content-Type"] == "image/jpeg"
        and "image/jpeg" in media.UPLOAD_CONTENT_TYPES
    )


def test_a_range_outside_the_file_answers_the_json_416(alice_api, photo):
    response = alice_api.get(
        f"{API}/analyses/{photo.pk}/media/", HTTP_RANGE=f"bytes={photo.size + 10}-"
    )
    assert assert_error(response, 416)["code"] == "range_not_satisfiable"
    assert response["Content-Range"] == f"bytes */{photo.size}"
    partial = alice_api.get(f"{API}/analyses/{photo.pk}/media/", HTTP_RANGE="bytes=0-9")
    assert partial.status_code == 206 and partial["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize(
    "path", ["/analyses/null,null/", "/analyses/%60G%0A/media/", "/nothing"]
)
@pytest.mark.parametrize("method", ["get", "delete", "post"])
def test_unknown_api_paths_answer_the_json_404_for_any_method(user, path, method):
    client = Client(enforce_csrf_checks=True)  # CSRF middleware on, as on the real site
    client.cookies["csrftoken"] = (
        "x" * 32
    )  # a stray cookie, as a fuzzer's session carries
    response = getattr(client, method)(API + path, HTTP_AUTHORIZATION="Token nope")
    assert_error(response, 404)


def test_schema_lists_the_answers_the_api_gives(schema):
    paths = schema["paths"]
    listing = paths["/api/v1/analyses/"]["get"]
    assert "404" in listing["responses"]
    params = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert (params["page"]["minimum"], params["page"]["maximum"]) == (1, 2**31 - 1)
    assert (params["page_size"]["minimum"], params["page_size"]["maximum"]) == (1, 100)
    assert params["emotion"]["pattern"] == "^[a-z]+$"

    upload = paths["/api/v1/analyses/"]["post"]
    encoding = upload["requestBody"]["content"]["multipart/form-data"]["encoding"][
        "file"
    ]["contentType"]
    assert set(encoding.split(", ")) == set(media.UPLOAD_CONTENT_TYPES)
    assert (
        schema["components"]["schemas"]["UploadRequest"]["properties"]["file"][
            "minLength"
        ]
        == 1
    )
    assert {"400", "403", "404", "413", "415"} <= set(upload["responses"])
    # Session writes without the CSRF token answer 403 (tests/test_security.py).
    assert "403" in paths["/api/v1/analyses/{id}/"]["delete"]["responses"]

    served = paths["/api/v1/analyses/{id}/media/"]["get"]
    assert {p["name"]: p["schema"]["type"] for p in served["parameters"]}[
        "download"
    ] == "boolean"
    for status in ("200", "206"):
        assert set(served["responses"][status]["content"]) == {
            *media.UPLOAD_CONTENT_TYPES,
            "application/octet-stream",
        }
    for status in ("400", "404", "416"):
        assert list(served["responses"][status]["content"]) == ["application/json"]


def test_every_error_answer_in_the_schema_has_the_error_shape(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    content = response["content"]
                    assert list(content) == ["application/json"], (path, method, status)
                    assert content["application/json"]["schema"]["$ref"].endswith(
                        "/Error"
                    )
