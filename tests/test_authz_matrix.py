"""Authorisation matrix: every HTTP route (read from the URL resolver) and every websocket route,
for three principals: the owner (alice), another signed-in person (mallory) and anonymous.

Each route must be classified below; a new route that is not fails ``test_every_route_is_classified``
until someone decides who may reach it. The rules:

- object routes (one analysis, ``<int:pk>``): mallory gets 404 for alice's analysis with every
  method (405 where the method is never allowed), never a 2xx/3xx; anonymous is sent to the login
  page (pages) or gets 401 (API);
- account routes (the caller's own data): anonymous as above; mallory gets her own (empty) data,
  never a trace of alice's;
- public routes: reachable by anyone and show nobody's data;
- Django admin: staff only; anonymous and non-staff people are sent to the admin login;
- uploaded files have no public URL at all: guessing the storage path is a 404 for everyone.

After every row alice's analysis and its files are still there (mallory's deletes did nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.db import connections
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from emotionsite.routing import websocket_urlpatterns
from recognition.analyses import services
from recognition.analyses.models import Analysis
from recognition.live import sockets
from tests.bad_inputs import face_jpeg

# the detector file's sha256 (its card): the on-device file route's concrete path
DETECTOR_SHA256 = re.search(r"sha256: ([0-9a-f]{64})", (Path(__file__).resolve().parents[1] / "models" / "LICENSE-yunet.md").read_text()).group(1)
PAGE_OBJECT, API_OBJECT = "page-object", "api-object"
PAGE_ACCOUNT, API_ACCOUNT = "page-account", "api-account"
PUBLIC, API_PUBLIC, ADMIN = "public", "api-public", "admin"
# CSP violation reports: anyone's browser POSTs them without a CSRF token; they are only logged
# (tests/test_csp.py).
REPORT = "report"

ROUTES: dict[str, str] = {
    # probes (recognition/health.py)
    "healthz": PUBLIC,
    "readyz": PUBLIC,  # 503 while a dependency is down or a model still loads: an answer
    "csp-report/": REPORT,
    "metrics": PUBLIC,  # 403 for everyone unless METRICS_TOKEN / METRICS_ALLOWED_IPS allow
    # pages
    "": PUBLIC,
    "live/": PAGE_ACCOUNT,
    "live/models.json": PAGE_ACCOUNT,  # the on-device files: the same for everyone signed in
    "live/models/<str:sha256>/<str:file>": PAGE_ACCOUNT,
    "upload/": PAGE_ACCOUNT,
    "history/": PAGE_ACCOUNT,
    "history/export.csv": PAGE_ACCOUNT,
    "history/export.json": PAGE_ACCOUNT,
    "dashboard/": PAGE_ACCOUNT,
    "analyses/status/": PAGE_ACCOUNT,
    "account/delete-data/": PAGE_ACCOUNT,
    "account/delete/": PAGE_ACCOUNT,
    "analyses/<int:pk>/": PAGE_OBJECT,
    "analyses/<int:pk>/media/": PAGE_OBJECT,
    "analyses/<int:pk>/delete/": PAGE_OBJECT,
    "analyses/<int:pk>/retry/": PAGE_OBJECT,
    "analyses/<int:pk>/corrections/": PAGE_OBJECT,
    "corrections/": PAGE_ACCOUNT,
    "corrections/export.zip": PAGE_ACCOUNT,
    "corrections/sharing/": PAGE_ACCOUNT,
    # accounts
    "accounts/signup/": PUBLIC,
    "accounts/login/": PUBLIC,
    "accounts/logout/": PUBLIC,
    "accounts/password_change/": PAGE_ACCOUNT,
    "accounts/password_change/done/": PAGE_ACCOUNT,
    "accounts/password_reset/": PUBLIC,
    "accounts/password_reset/done/": PUBLIC,
    "accounts/reset/<uidb64>/<token>/": PUBLIC,
    "accounts/reset/done/": PUBLIC,
    # privacy: account page, two-factor sign-in, e-mail verification (privacy/urls.py)
    "account/": PAGE_ACCOUNT,
    "account/retention/": PAGE_ACCOUNT,
    "account/token/": PAGE_ACCOUNT,
    "account/token/revoke/": PAGE_ACCOUNT,
    "account/verify-email/": PAGE_ACCOUNT,
    "accounts/verify-email/<str:token>/": PUBLIC,  # the signed link from the e-mail
    "accounts/login/verify/": PUBLIC,  # second sign-in step: needs a password accepted first
    "accounts/two-factor/": PAGE_ACCOUNT,
    "accounts/two-factor/setup/": PAGE_ACCOUNT,
    "accounts/two-factor/verify/": PAGE_ACCOUNT,
    "accounts/two-factor/recovery/": PAGE_ACCOUNT,
    "accounts/two-factor/disable/": PAGE_ACCOUNT,
    # REST API
    "api/v1/auth/token/": API_PUBLIC,  # POST credentials; anything else needs a token
    "api/v1/auth/token/revoke/": API_ACCOUNT,
    "api/v1/analyses/": API_ACCOUNT,
    "api/v1/analyses/<int:pk>/": API_OBJECT,
    "api/v1/analyses/<int:pk>/media/": API_OBJECT,
    "api/v1/export.csv": API_ACCOUNT,
    "api/v1/export.json": API_ACCOUNT,
    "api/v1/models/": API_ACCOUNT,
    "api/v1/live-sessions/": API_ACCOUNT,  # POST: saves a session for the caller
    "api/v1/stats/": API_ACCOUNT,
    "api/v1/analyses/<int:pk>/corrections/": API_OBJECT,
    "api/v1/analyses/<int:pk>/corrections/<str:item>/": API_OBJECT,
    "api/v1/corrections/": API_ACCOUNT,
    "api/v1/corrections/export.zip": API_ACCOUNT,
    "api/v1/corrections/sharing/": API_ACCOUNT,
    "api/v1/^": API_PUBLIC,  # the JSON 404 for unknown API paths (newlines included)
    "api/schema/": PUBLIC,
    "api/docs/": PUBLIC,
    "api/redoc/": PUBLIC,
}
# Websocket routes: (what the socket carries, the channel groups a person's socket joins).
SOCKETS: dict[str, str] = {"ws/live/": "live", "ws/analyses/": "status"}


def walk(resolver: URLResolver, prefix: str = "") -> Iterator[str]:
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern, route)
        else:
            assert isinstance(pattern, URLPattern)
            yield route


ALL_ROUTES = sorted(set(walk(get_resolver())))


def classify(route: str) -> str | None:
    if route.startswith("admin/"):
        return ADMIN  # Django's admin site: staff only as a whole
    return ROUTES.get(route)


def test_every_route_is_classified():
    missing = [r for r in ALL_ROUTES if classify(r) is None]
    assert not missing, (
        f"classify these routes in tests/test_authz_matrix.py: {missing}"
    )
    stale = set(ROUTES) - set(ALL_ROUTES)
    assert not stale, f"routes that no longer exist: {stale}"
    sockets = {str(p.pattern) for p in websocket_urlpatterns}
    assert sockets == set(SOCKETS), (
        f"classify these websocket routes: {sockets ^ set(SOCKETS)}"
    )


# --- fixtures -------------------------------------------------------------------------------------

SECRET_NAME = "alice-private-diary-7f3a.jpg"


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice_analysis(user) -> Analysis:
    """Alice's analysis, finished with real results (one face), so every view has data to leak."""
    analysis = services.create_analysis(
        owner=user, upload=face_jpeg(), filename=SECRET_NAME, enqueue=False
    )
    return services.run_analysis(analysis_id=analysis.pk)


def concrete(route: str, pk: int) -> str:
    """A requestable path for a route pattern (alice's analysis for ``pk``)."""
    special = {
        "api/v1/^.*$": "api/v1/no-such-endpoint/",
        "admin/^(?P<app_label>auth|authtoken|recognition)/$": "admin/recognition/",
        "admin/(?P<url>.*)$": "admin/no-such-page/",
        # the old addresses of the corrections' admin pages (a staff-only redirect)
        "admin/^recognition/(?P<rest>(?:correction|accountsettings)/.*)$": "admin/recognition/correction/",
    }
    if route.startswith("admin/^(?P<app_label>"):  # whichever apps the admin lists (django-otp's too)
        return "/admin/recognition/"
    if route in special:
        return "/" + special[route]
    values = {"pk": str(pk), "object_id": str(pk), "id": str(pk), "content_type_id": "1", "uidb64": "MQ",
              "token": "set-password", "item": "face-1", "file": "face_detection_yunet.onnx",
              "sha256": DETECTOR_SHA256}  # fmt: skip
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)
    assert "<" not in path and "(?" not in path, f"no concrete path for {route}"
    return "/" + path


@pytest.fixture
def principals(user, other_user) -> dict[str, object]:
    """Clients for the owner, the other person and anonymous: test Client for pages, APIClient
    with a token for the API."""
    alice, mallory = Client(), Client()
    alice.force_login(user)
    mallory.force_login(other_user)
    alice_api, mallory_api = APIClient(), APIClient()
    alice_api.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}"
    )
    mallory_api.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other_user).key}"
    )
    return {
        "alice": alice,
        "mallory": mallory,
        "anon": Client(),
        "alice-api": alice_api,
        "mallory-api": mallory_api,
        "anon-api": APIClient(),
    }


def body_text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def leaks(response, analysis: Analysis) -> list[str]:
    """Which of alice's identifying values appear in a response."""
    text = body_text(response)
    secrets = {"name": SECRET_NAME, "sha256": analysis.sha256, "uid": analysis.uid.hex}
    return [k for k, v in secrets.items() if v and v in text]


def assert_alice_intact(analysis: Analysis) -> None:
    fresh = Analysis.objects.get(pk=analysis.pk)
    assert fresh.owner_id == analysis.owner_id and fresh.status == "done"
    with fresh.media.open("rb") as fh:
        assert fh.read(3) == b"\xff\xd8\xff"


def request(client, method: str, path: str):
    return getattr(client, method.lower())(path)


PAGE_METHODS = ("GET", "POST")
API_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Query variants of the media routes (thumbnails, previews, downloads) are checked too.
VARIANTS = {"analyses/<int:pk>/media/": ["", "?variant=thumb", "?variant=preview", "?download=1"],
            "api/v1/analyses/<int:pk>/media/": ["", "?download=1"]}  # fmt: skip
# What the owner gets from a GET, proving the route serves real data (so a 404 for mallory is
# isolation, not a broken route). Retry is POST-only (the owner's POST on a done analysis is a no-op).
OWNER_OK = {"analyses/<int:pk>/retry/": ("POST", 302),
            # POST-only; without an item the owner's POST is a 400 (mallory's a 404)
            "analyses/<int:pk>/corrections/": ("POST", 400),
            "api/v1/analyses/<int:pk>/corrections/<str:item>/": ("DELETE", 204)}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route", [r for r in ALL_ROUTES if classify(r) in (PAGE_OBJECT, API_OBJECT)]
)
def test_object_routes(route, principals, alice_analysis):
    api = classify(route) == API_OBJECT
    base = concrete(route, alice_analysis.pk)
    owner = principals["alice-api" if api else "alice"]
    method, status = OWNER_OK.get(route, ("GET", 200))
    for variant in VARIANTS.get(route, [""]):
        assert request(owner, method, base + variant).status_code == status, (
            base + variant
        )
        for m in API_METHODS if api else PAGE_METHODS:
            other = request(
                principals["mallory-api" if api else "mallory"], m, base + variant
            )
            assert other.status_code in (404, 405), (
                m,
                base + variant,
                other.status_code,
            )
            assert not leaks(other, alice_analysis)
            anon = request(principals["anon-api" if api else "anon"], m, base + variant)
            if api:
                assert anon.status_code == 401, (m, base, anon.status_code)
            else:
                assert anon.status_code == 302 and anon["Location"].startswith(
                    "/accounts/login/?next="
                )
            assert not leaks(anon, alice_analysis)
        # The methods the owner uses are a 404 (not 405) for mallory: same as a missing id.
        assert (
            request(
                principals["mallory-api" if api else "mallory"], method, base + variant
            ).status_code
            == 404
        )
    missing = concrete(route, 10**9)
    assert (
        request(owner, method, missing).status_code == 404
    )  # a missing id looks the same
    assert_alice_intact(alice_analysis)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route", [r for r in ALL_ROUTES if classify(r) in (PAGE_ACCOUNT, API_ACCOUNT)]
)
def test_account_routes(route, principals, alice_analysis, other_user):
    api = classify(route) == API_ACCOUNT
    path = concrete(route, alice_analysis.pk)
    if route == "analyses/status/":
        path += f"?ids={alice_analysis.pk}"
    owner = request(principals["alice-api" if api else "alice"], "GET", path)
    assert owner.status_code in (200, 405), (path, owner.status_code)
    mallory = request(principals["mallory-api" if api else "mallory"], "GET", path)
    assert mallory.status_code == owner.status_code
    assert not leaks(mallory, alice_analysis), path
    for m in API_METHODS if api else PAGE_METHODS:
        anon = request(principals["anon-api" if api else "anon"], m, path)
        if api:
            assert anon.status_code == 401, (m, path, anon.status_code)
            assert anon.json()["error"]["code"] == "not_authenticated"
        else:
            assert anon.status_code == 302 and anon["Location"].startswith(
                "/accounts/login/?next="
            ), (m, path)
        assert not leaks(anon, alice_analysis)
    # Mallory's writes on her own account (e.g. "delete all my data") touch nothing of alice's.
    for m in API_METHODS if api else PAGE_METHODS:
        assert (
            request(
                principals["mallory-api" if api else "mallory"], m, path
            ).status_code
            < 500
        )
    assert_alice_intact(alice_analysis)
    assert Token.objects.filter(user=alice_analysis.owner).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route", [r for r in ALL_ROUTES if classify(r) in (PUBLIC, API_PUBLIC, REPORT)]
)
def test_public_routes(route, principals, alice_analysis):
    path = concrete(route, alice_analysis.pk)
    for who in ("anon", "mallory", "anon-api"):
        for m in PAGE_METHODS:
            response = request(principals[who], m, path)
            # readiness says 503 "not ready" (e.g. the voice model still loading here)
            status = response.status_code
            allowed = (503,) if route == "readyz" else ()
            assert status < 500 or status in allowed, (who, m, path)
            assert not leaks(response, alice_analysis), (who, m, path)
    assert_alice_intact(alice_analysis)


@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in ALL_ROUTES if classify(r) == ADMIN])
def test_admin_routes_are_staff_only(route, principals, alice_analysis):
    path = concrete(route, alice_analysis.pk)
    for who in ("anon", "mallory"):
        response = request(principals[who], "GET", path)
        if route == "admin/login/":
            assert response.status_code in (200, 302)
        else:
            assert response.status_code in (302, 405), (who, path, response.status_code)
            if (
                response.status_code == 302
            ):  # (admin log-out without permission goes to /admin/)
                assert response["Location"].startswith(
                    "/admin/login/" if route != "admin/logout/" else "/admin/"
                )
        assert not leaks(response, alice_analysis), (who, path)
    assert_alice_intact(alice_analysis)


@pytest.mark.django_db
def test_stored_files_have_no_public_url(principals, alice_analysis, settings):
    """Guessing where the file lies on disk reaches nothing, not even for its owner."""
    name = alice_analysis.media.name  # users/<id>/<uuid>.jpg
    guesses = [f"/{name}", f"/media/{name}", f"/data/media/{name}", f"/static/../data/media/{name}",
               "/static/../data/secret_key", "/data/secret_key", "/media/", f"/media/users/{alice_analysis.owner_id}/"]  # fmt: skip
    for who in ("alice", "mallory", "anon"):
        for path in guesses:
            response = principals[who].get(path)
            assert response.status_code == 404, (who, path)
            assert not leaks(response, alice_analysis)


# --- websockets -----------------------------------------------------------------------------------


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(path: str, user=None) -> WebsocketCommunicator:
    from emotionsite.asgi import application

    headers = [(b"origin", b"http://testserver")]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    return WebsocketCommunicator(application, "/" + path, headers=headers)


@pytest.fixture
async def _close_db_connections():
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_db_connections")
@pytest.mark.parametrize("path", sorted(SOCKETS))
async def test_anonymous_sockets_are_closed_with_4401(path):
    socket = await open_socket(path)
    connected, code = await socket.connect(timeout=20)
    if (
        connected
    ):  # the live socket accepts, then closes, so the page can tell "sign in again"
        code = (await socket.receive_output(timeout=20))["code"]
    assert code == 4401
    await socket.disconnect()


def groups_of(kind: str, user_id: int) -> list[tuple[str, dict]]:
    """The channel groups a person's socket of this kind joins and an event sent there."""
    if kind == "status":
        return [
            (
                f"user-{user_id}",
                {"type": "analysis.update", "analysis": {"id": 1, "status": "done"}},
            )
        ]
    return [(sockets.live_group(user_id), {"type": "live.close", "code": 4401})]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_close_db_connections")
@pytest.mark.parametrize("path", sorted(SOCKETS))
async def test_socket_groups_reach_only_their_owner(path, user, other_user):
    """Whatever is sent to alice's groups (status pushes, sign-out) reaches alice's sockets and
    none of mallory's."""
    alice, mallory = await open_socket(path, user), await open_socket(path, other_user)
    assert (await alice.connect(timeout=20))[0] and (await mallory.connect(timeout=20))[
        0
    ]
    layer = get_channel_layer()
    for group, event in groups_of(SOCKETS[path], user.pk):
        await layer.group_send(group, event)
    got = await alice.receive_output(timeout=20)
    assert got["type"] in ("websocket.send", "websocket.close"), got
    assert await mallory.receive_nothing(timeout=0.5)
    await mallory.send_to(text_data='{"type": "ping"}')
    assert (await mallory.receive_json_from(timeout=20))["type"] == "pong"
    await alice.disconnect()
    await mallory.disconnect()
