"""Security settings checked on real responses: the log-in rate limit, CSRF on every page that
takes a POST (from the URL resolver), secure cookies and HSTS in production mode, security headers
on every kind of response, throttles on every API view, and no secrets in the repository.

Already covered elsewhere and not repeated here: ``check --deploy`` clean with the production
variables (test_settings.py), CSRF on log-in/sign-up/log-out (test_accounts.py) and uploads
(test_pages.py, test_api.py), the API throttle rates (test_api.py), the live socket's message
rate cap (test_consumers.py), weak passwords refused (test_accounts.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, get_resolver
from rest_framework.views import APIView

from recognition.analyses import services
from recognition.analyses.models import Analysis
from tests.bad_inputs import face_jpeg
from tests.test_authz_matrix import (
    ALL_ROUTES,
    PAGE_ACCOUNT,
    PAGE_OBJECT,
    PUBLIC,
    classify,
    concrete,
)
from tests.test_settings import _clean_env, _production_env, _python

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # failure counters and throttles live in the cache
    yield
    cache.clear()


# --- log-in rate limit ---------------------------------------------------------------------------


def log_in(client: Client, username: str, password: str, ip: str = "203.0.113.7"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_login_is_limited_per_address_and_username(user, password, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 5
    client = Client()
    for _ in range(5):
        response = log_in(client, "alice", "wrong-guess")
        assert response.status_code == 200 and not signed_in(client)
    # The 6th try is refused even with the right password, with a message saying why.
    refused = log_in(client, "alice", password)
    assert refused.status_code == 429 and not signed_in(client)
    assert "Too many failed log-in attempts" in refused.content.decode()
    assert (
        'name="csrfmiddlewaretoken"' in refused.content.decode()
    )  # the form is still there
    # Neither the account (from another address) nor other people (same address) are locked out.
    other_ip = Client()
    assert log_in(other_ip, "alice", password, ip="198.51.100.9").status_code == 302
    assert signed_in(other_ip)
    cache.clear()  # the window (LOGIN_FAILURE_WINDOW) has passed
    assert log_in(client, "alice", password).status_code == 302 and signed_in(client)


def test_login_is_limited_per_address_across_usernames(user, password, settings):
    settings.LOGIN_FAILURES_PER_IP = 6
    client = Client()
    for i in range(6):
        assert log_in(client, f"someone{i}", "guess").status_code == 200
    assert log_in(client, "alice", password).status_code == 429
    assert log_in(Client(), "alice", password, ip="198.51.100.9").status_code == 302


def test_a_successful_login_clears_the_username_count(user, password, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    client = Client()
    for _ in range(2):
        log_in(client, "alice", "typo")
    assert log_in(client, "alice", password).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(2):
        assert log_in(client, "alice", "typo").status_code == 200
    assert log_in(client, "alice", password).status_code == 302


def test_token_endpoint_is_throttled_too(user, password, settings):
    """The API's password check has its own per-client throttle (scope ``token``)."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "token": "3/min"}}  # fmt: skip
    client = Client()
    codes = [
        client.post(
            "/api/v1/auth/token/", {"username": "alice", "password": "x"}
        ).status_code
        for _ in range(4)
    ]
    assert codes == [400, 400, 400, 429]


# --- CSRF on every page that takes a POST ---------------------------------------------------------


@pytest.fixture
def alice_analysis(user) -> Analysis:
    return services.create_analysis(
        owner=user, upload=face_jpeg(), filename="mine.jpg", enqueue=False
    )


@pytest.mark.parametrize(
    "route",
    [r for r in ALL_ROUTES if classify(r) in (PAGE_OBJECT, PAGE_ACCOUNT, PUBLIC)],
)
def test_every_page_post_needs_the_csrf_token(route, user, alice_analysis):
    """A signed-in person's browser posting from another site (no token) changes nothing."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    path = concrete(route, alice_analysis.pk)
    response = client.post(
        path,
        {"file": "x", "username": "alice", "password": "x", "email": "a@example.com"},
    )
    if route.startswith("api/"):  # schema and docs pages are read-only
        assert response.status_code in (403, 405)
    else:
        assert response.status_code == 403, (path, response.status_code)
    assert Analysis.objects.filter(pk=alice_analysis.pk).exists()
    assert "_auth_user_id" in client.session  # not logged out


def test_api_writes_with_the_session_need_the_csrf_token(user, alice_analysis):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    for method, path in [("delete", f"/api/v1/analyses/{alice_analysis.pk}/"), ("post", "/api/v1/auth/token/revoke/"),
                         ("delete", "/api/v1/auth/token/")]:  # fmt: skip
        response = getattr(client, method)(path)
        assert (
            response.status_code == 403
            and "CSRF" in response.json()["error"]["message"]
        ), path
    assert Analysis.objects.filter(pk=alice_analysis.pk).exists()


# --- production mode: HTTPS redirect, HSTS, secure cookies ----------------------------------------

SECURITY_PROBE = r"""
import json, django
django.setup()
from django.conf import settings
names = ["SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
         "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
         "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE", "X_FRAME_OPTIONS", "SECURE_CONTENT_TYPE_NOSNIFF",
         "SECURE_REFERRER_POLICY", "DEBUG"]
print(json.dumps({n: getattr(settings, n) for n in names}))
"""


@pytest.fixture(scope="module")
def production_security(tmp_path_factory) -> dict:
    """The security settings a production start (DEBUG=False, HTTPS default) really computes."""
    tmp = tmp_path_factory.mktemp("prod")
    result = _python(SECURITY_PROBE, _clean_env(tmp, **_production_env(tmp)))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_redirects_to_https_and_sets_secure_cookies(
    production_security, settings, user, password
):
    values = dict(production_security)
    assert values.pop("DEBUG") is False
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    for name, value in values.items():
        setattr(settings, name, value)
    client = Client()
    plain = client.get("/accounts/login/")
    assert (
        plain.status_code == 301
        and plain["Location"] == "https://testserver/accounts/login/"
    )

    # As the TLS proxy in front of daphne sends them: the scheme and the original Host.
    https = {
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_HOST": "testserver",
    }
    page = client.get("/accounts/login/", **https)
    assert page.status_code == 200
    assert (
        page["Strict-Transport-Security"]
        == "max-age=31536000; includeSubDomains; preload"
    )
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"
    token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()
    ).group(1)
    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = csrf.value
    response = client.post("/accounts/login/", {"username": "alice", "password": password, "csrfmiddlewaretoken": token},
                           HTTP_REFERER="https://testserver/accounts/login/", **https)  # fmt: skip
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"


# --- security headers on every kind of response ---------------------------------------------------


def test_security_headers_on_every_kind_of_response(alice_client, user, alice_analysis):
    paths = {
        "page": "/history/",
        "json status": f"/analyses/status/?ids={alice_analysis.pk}",
        "export": "/history/export.csv",
        "media": f"/analyses/{alice_analysis.pk}/media/",
        "api": "/api/v1/stats/",
        "api 404": "/api/v1/nothing/",
        "page 404": "/no-such-page/",
        "schema": "/api/schema/",
        "liveness": "/healthz",
        "readiness": "/readyz",
    }
    for kind, path in paths.items():
        response = alice_client.get(path)
        assert response.status_code < 500 or path == "/readyz", kind  # 503: "not ready"
        assert response["X-Frame-Options"] == "DENY", kind
        assert response["X-Content-Type-Options"] == "nosniff", kind
        assert response["Referrer-Policy"] == "same-origin", kind
        assert response["Cross-Origin-Opener-Policy"] == "same-origin", kind
    media = alice_client.get(paths["media"])
    assert (
        "sandbox" in media["Content-Security-Policy"]
        and "private" in media["Cache-Control"]
    )


def test_private_pages_are_not_cached_by_shared_caches(alice_client, alice_analysis):
    for path in ("/history/export.csv", "/history/export.json"):
        cache_control = alice_client.get(path)["Cache-Control"]
        assert "private" in cache_control and "no-store" in cache_control


# --- throttles on every API view ------------------------------------------------------------------


def test_every_api_view_is_throttled():
    """A view that sets ``throttle_classes = []`` (or forgets the default) is caught here."""
    unthrottled, seen = [], 0
    for route, pattern in _patterns(get_resolver()):
        view = getattr(pattern.callback, "cls", None)
        if view is None or not issubclass(view, APIView):
            continue
        seen += 1
        if not view.throttle_classes:
            unthrottled.append(route)
    assert seen >= 10 and not unthrottled, unthrottled


def _patterns(resolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern
        else:
            yield from _patterns(pattern, prefix + str(pattern.pattern))


# --- no secrets in the repository -----------------------------------------------------------------

SECRET_PATTERNS = {
    "private key": re.compile(
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY-----"
    ),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(
        r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}"
    ),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Stripe/OpenAI-style key": re.compile(
        r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}|\bsk-[A-Za-z0-9]{32,}\b"
    ),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "Django insecure key": re.compile(
        r"django-insecure[-]"
    ),  # [-]: this line is not a match
}
# A literal Django SECRET_KEY (tests build throw-away keys at run time and are not scanned for it).
SECRET_KEY_LITERAL = re.compile(r"""SECRET_KEY\s*[:=]\s*["'][^"'$\s]{16,}["']""")
FORBIDDEN_FILES = re.compile(
    r"(^|/)(\.env(\..+)?|id_[rd]sa|.+\.pem|.+\.key|.+\.p12|secret_key|.+\.sqlite3)$"
)


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout
    return [p for p in out.decode().split("\0") if p]


def test_no_secrets_are_committed():
    files = tracked_files()
    assert len(files) > 50
    found = [
        f"{path}: forbidden file" for path in files if FORBIDDEN_FILES.search(path)
    ]
    for path in files:
        full = REPO / path
        if not full.is_file() or full.stat().st_size > 5_000_000:
            continue
        data = full.read_bytes()
        if b"\0" in data[:8000]:
            continue  # binary (models, images)
        text = data.decode("utf-8", "replace")
        found += [
            f"{path}: {name}"
            for name, pattern in SECRET_PATTERNS.items()
            if pattern.search(text)
        ]
        if not path.startswith("tests/") and SECRET_KEY_LITERAL.search(text):
            found.append(f"{path}: SECRET_KEY literal")
    assert not found, found


def test_the_scan_finds_what_it_looks_for():
    """The patterns are not vacuous: each matches a sample of what it must catch."""
    samples = {
        # Assembled at run time, so this file holds no match for the repository scan.
        "private key": "-----BEGIN RSA PRIVATE " + "KEY-----",
        "AWS access key": "key = AKIA" + "IOSFODNN7EXAMPLE",
        "GitHub token": "ghp_" + "a" * 36,
        "Slack token": "xoxb" + "-1234567890-abcdef",
        "Stripe/OpenAI-style key": "sk_live_" + "a" * 24,
        "Google API key": "AIza" + "b" * 35,
        "Django insecure key": "django-" + "insecure-abc",
    }
    for name, sample in samples.items():
        assert SECRET_PATTERNS[name].search(sample), name
    assert SECRET_KEY_LITERAL.search("SECRET_KEY = 'k8#2jd92jd8s9dj2k3jd'")
    assert not SECRET_KEY_LITERAL.search("SECRET_KEY: ${SECRET_KEY:-}")
    assert FORBIDDEN_FILES.search("deploy/.env") and FORBIDDEN_FILES.search(
        "data/secret_key"
    )


def test_the_generated_secret_key_and_local_data_are_ignored_by_git():
    result = subprocess.run(["git", "check-ignore", "data/secret_key", "data/db.sqlite3", "data/media/users/1/x.jpg"],
                            cwd=REPO, capture_output=True, text=True, check=False)  # fmt: skip
    assert result.stdout.split() == [
        "data/secret_key",
        "data/db.sqlite3",
        "data/media/users/1/x.jpg",
    ]
