"""The OpenAPI schema is valid and describes the API as built; the docs page works offline."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command

REPO = Path(__file__).resolve().parents[1]
API_OPERATIONS = {
    ("/api/v1/auth/token/", "post"),
    ("/api/v1/auth/token/", "delete"),
    ("/api/v1/auth/token/revoke/", "post"),
    ("/api/v1/analyses/", "get"),
    ("/api/v1/analyses/", "post"),
    ("/api/v1/analyses/{id}/", "get"),
    ("/api/v1/analyses/{id}/", "delete"),
    ("/api/v1/analyses/{id}/media/", "get"),
    ("/api/v1/export.csv", "get"),
    ("/api/v1/export.json", "get"),
    ("/api/v1/models/", "get"),
    ("/api/v1/live-sessions/", "post"),
    ("/api/v1/stats/", "get"),
    ("/api/v1/analyses/{id}/corrections/", "get"),
    ("/api/v1/analyses/{id}/corrections/{item}/", "put"),
    ("/api/v1/analyses/{id}/corrections/{item}/", "delete"),
    ("/api/v1/corrections/", "get"),
    ("/api/v1/corrections/export.zip", "get"),
    ("/api/v1/corrections/sharing/", "get"),
    ("/api/v1/corrections/sharing/", "put"),
}


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        from drf_spectacular.generators import SchemaGenerator

        return SchemaGenerator().get_schema(request=None, public=True)


def test_schema_validates_without_warnings(tmp_path):
    """drf-spectacular's own check: OpenAPI 3 JSON-schema validation, and any warning fails."""
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert out.read_text().startswith("openapi: 3")


def test_schema_lists_every_api_operation(schema):
    operations = {
        (path, method)
        for path, item in schema["paths"].items()
        for method in item
        if path.startswith("/api/v1/")
    }
    assert operations == API_OPERATIONS


def test_every_operation_but_sign_in_requires_token_or_session(schema):
    for path, method in API_OPERATIONS:
        security = schema["paths"][path][method].get("security", [])
        if (path, method) == ("/api/v1/auth/token/", "post"):
            assert security in ([], [{}])
        else:
            assert {"tokenAuth": []} in security and {"cookieAuth": []} in security, (
                path,
                method,
            )
    assert schema["components"]["securitySchemes"]["tokenAuth"]["in"] == "header"


def test_upload_is_documented_as_multipart_with_its_statuses(schema):
    post = schema["paths"]["/api/v1/analyses/"]["post"]
    body = post["requestBody"]["content"]
    assert list(body) == ["multipart/form-data"]
    upload = schema["components"]["schemas"][
        body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    ]
    assert upload["properties"]["file"] == {
        **upload["properties"]["file"],
        "type": "string",
        "format": "binary",
    }
    assert upload["required"] == ["file"]
    assert {"201", "202", "400", "401", "413", "415", "429"} <= set(post["responses"])
    assert [p["name"] for p in post["parameters"]] == ["wait"]


def test_result_and_error_shapes_are_described(schema):
    components = schema["components"]["schemas"]
    analysis = components["Analysis"]["properties"]
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
    ):
        assert key in analysis
    result = components["Result"]["properties"]
    assert result["faces"]["items"]["$ref"].endswith("/FaceResult")
    assert components["FaceResult"]["properties"]["box"]["minItems"] == 4
    assert "/VoiceResult" in json.dumps(result["voice"])
    assert set(components["ErrorDetail"]["required"]) == {"status", "code", "message"}
    detail = schema["paths"]["/api/v1/analyses/{id}/"]["get"]["responses"]
    assert detail["404"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Error"
    )
    listing = schema["paths"]["/api/v1/analyses/"]["get"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"][
        "$ref"
    ].endswith("/PaginatedAnalysisList")
    assert {"page", "page_size", "kind", "emotion", "date_from", "date_to"} <= {
        p["name"] for p in listing["parameters"]
    }


def test_schema_endpoint_serves_openapi_3(client, db):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    served = response.json()
    assert (
        served["openapi"].startswith("3.")
        and served["info"]["title"] == "emotionsite API"
    )
    assert "/api/v1/analyses/" in served["paths"]


def test_schema_endpoint_is_throttled_for_anonymous_clients(client, db, settings):
    rest = settings.REST_FRAMEWORK
    settings.REST_FRAMEWORK = {
        **rest,
        "DEFAULT_THROTTLE_RATES": {**rest["DEFAULT_THROTTLE_RATES"], "anon": "1/min"},
    }
    assert client.get("/api/schema/", {"format": "json"}).status_code == 200
    assert client.get("/api/schema/", {"format": "json"}).status_code == 429


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_docs_page_uses_only_local_assets(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = _asset_urls(html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for url in assets:  # the vendored Swagger UI, our page styles and the init script
        assert url.startswith(("/static/drf_spectacular_sidecar/", "/static/css/", "/api/docs/?script")), url
    assert "cdn" not in html.lower() and "https://" not in html


@pytest.mark.django_db(transaction=True)
def test_docs_assets_are_served_by_the_site(live_server):
    with urllib.request.urlopen(f"{live_server.url}/api/docs/", timeout=30) as page:
        assets = _asset_urls(page.read().decode())
    for url in assets:
        with urllib.request.urlopen(live_server.url + url, timeout=30) as asset:
            assert asset.status == 200 and len(asset.read()) > 500, url


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_docs_page_renders_offline_in_a_browser(live_server):
    """Headless Chromium with every non-local request blocked: Swagger UI still renders."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})

            def guard(route):
                if route.request.url.startswith(live_server.url):
                    return route.continue_()
                outside.append(route.request.url)
                return route.abort()

            page.route("**/*", guard)
            page.goto(f"{live_server.url}/api/docs/")
            page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
            page.wait_for_selector("text=/api/v1/analyses/", timeout=30_000)
            assert "emotionsite API" in page.inner_text(".swagger-ui .info .title")
            # Kept out of git (docs/screenshots/api_docs.png is the committed copy).
            shots = REPO / "test-artifacts"
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "api_docs.png"))
        finally:
            browser.close()
    assert outside == []


def test_live_session_upload_is_documented(schema):
    post = schema["paths"]["/api/v1/live-sessions/"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    session = schema["components"]["schemas"][body]
    assert set(session["required"]) == {"model", "duration", "samples"}
    face = schema["components"]["schemas"]["DeviceFaceRequest"]["properties"]["probabilities"]
    assert face["minItems"] == face["maxItems"] == 7
    assert {"201", "400", "401", "413"} <= set(post["responses"])
