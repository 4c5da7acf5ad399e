"""The Content-Security-Policy header (django-csp, recognition/csp.py) and the report view.
In a real browser: tests/e2e/test_csp_browser.py."""

from __future__ import annotations

import json
import logging

import pytest

pytestmark = pytest.mark.django_db


def directives(header: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in header.split(";"))}


@pytest.mark.parametrize(
    "path",
    ["/", "/accounts/signup/", "/accounts/login/", "/upload/", "/history/", "/dashboard/", "/live/",
     "/api/docs/", "/api/redoc/", "/api/docs/?script="],
)  # fmt: skip
def test_every_page_has_a_strict_policy(client, user, path):
    if not path.startswith("/accounts/"):
        client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    csp = directives(response["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"]
    # no inline script, no eval (a nonce only when used); the live page alone may compile
    # WebAssembly ("On this device": onnxruntime-web)
    assert csp["script-src"] == (["'self'", "'wasm-unsafe-eval'"] if path == "/live/" else ["'self'"])
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"] and csp["form-action"] == ["'self'"]
    assert csp["connect-src"] == ["'self'", "ws://testserver"]
    assert csp["report-uri"] == ["/csp-report/"]
    if path == "/api/redoc/":  # ReDoc's own <style> elements and search worker
        assert csp["style-src-elem"] == ["'self'", "'unsafe-inline'"] and csp["worker-src"] == ["'self'", "blob:"]
    else:
        assert csp["style-src-elem"] == ["'self'"]


def test_no_inline_script_in_the_pages(alice_client):
    for path in ("/", "/upload/", "/dashboard/", "/live/", "/api/docs/", "/api/redoc/"):
        html = alice_client.get(path).content.decode()
        assert "<script>" not in html and "<style>" not in html, path
        assert " onclick=" not in html and " onload=" not in html, path


def test_websocket_origin_follows_the_scheme(alice_client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = alice_client.get("/history/", headers={"x-forwarded-proto": "https", "host": "testserver"})
    assert "wss://testserver" in directives(response["Content-Security-Policy"])["connect-src"]


def test_a_nonce_is_added_only_when_a_template_uses_it(rf):
    from django.http import HttpResponse
    from django.template import engines

    from recognition.operations.csp import CSPMiddleware

    template = engines["django"].from_string('<script nonce="{{ request.csp_nonce }}">1</script>')

    def view(request):
        return HttpResponse(template.render({}, request))

    request = rf.get("/")
    response = CSPMiddleware(view)(request)
    nonce = directives(response["Content-Security-Policy"])["script-src"][1]
    assert nonce.startswith("'nonce-") and nonce[7:-1] in response.content.decode()


REPORT = {
    "csp-report": {
        "document-uri": "http://testserver/upload/",
        "referrer": "",
        "violated-directive": "script-src-elem",
        "effective-directive": "script-src-elem",
        "original-policy": "default-src 'self'",
        "disposition": "enforce",
        "blocked-uri": "inline",
        "line-number": 12,
        "source-file": "http://testserver/upload/",
        "status-code": 200,
        "script-sample": "alert(1)\n\x1b[31m",
    }
}


def test_a_report_is_logged_and_answered_204(client, caplog):
    with caplog.at_level(logging.WARNING, logger="recognition.csp"):
        response = client.post("/csp-report/", json.dumps(REPORT), content_type="application/csp-report")
    assert response.status_code == 204
    (record,) = [r for r in caplog.records if r.name == "recognition.csp"]
    message = record.getMessage()
    assert "effective-directive=script-src-elem" in message and "blocked-uri=inline" in message
    assert "document-uri=http://testserver/upload/" in message and "line-number=12" in message
    assert "\n" not in message and "\x1b" not in message  # one line, no control characters


def test_reporting_api_reports_are_logged_too(client, caplog):
    body = [{"type": "csp-violation", "url": "http://testserver/", "body": {
        "documentURL": "http://testserver/live/", "effectiveDirective": "connect-src",
        "blockedURL": "ws://elsewhere.example/ws/", "disposition": "enforce"}}]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="recognition.csp"):
        response = client.post("/csp-report/", json.dumps(body), content_type="application/reports+json")
    assert response.status_code == 204
    assert "effective-directive=connect-src blocked-uri=ws://elsewhere.example/ws/" in caplog.text


@pytest.mark.parametrize(
    "body, content_type",
    [
        ("not json", "application/csp-report"),
        ("{}", "application/csp-report"),
        ('{"csp-report": "x"}', "application/csp-report"),
        ('{"csp-report": {"nothing": 1}}', "application/csp-report"),
        ("[]", "application/reports+json"),
        ('[{"type": "deprecation", "body": {}}]', "application/reports+json"),
        ("[1, 2]", "application/json"),
        (json.dumps(REPORT), "text/plain"),
        ("x=1", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/csp-report"),
        ("[" * 100_00 + "]" * 100_00, "application/json"),
    ],
)
def test_junk_is_refused_with_400(client, caplog, body, content_type):
    with caplog.at_level(logging.WARNING, logger="recognition.csp"):
        response = client.post("/csp-report/", body, content_type=content_type)
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.name == "recognition.csp"]


def test_other_methods_and_large_bodies(client, settings):
    assert client.get("/csp-report/").status_code == 405
    settings.CSP_REPORT_MAX_BYTES = 1000
    big = {"csp-report": {**REPORT["csp-report"], "script-sample": "x" * 2000}}
    assert client.post("/csp-report/", json.dumps(big), content_type="application/csp-report").status_code == 413


def test_reports_from_one_address_are_capped_in_the_log(client, caplog):
    from django.core.cache import cache

    from recognition.operations import csp

    cache.clear()
    with caplog.at_level(logging.WARNING, logger="recognition.csp"):
        for _ in range(csp.REPORTS_PER_MINUTE + 5):
            assert client.post("/csp-report/", json.dumps(REPORT), content_type="application/csp-report").status_code == 204
    logged = [r for r in caplog.records if r.name == "recognition.csp"]
    assert len(logged) == csp.REPORTS_PER_MINUTE + 1  # then one line saying it stops
    assert "not logging more" in logged[-1].getMessage()
