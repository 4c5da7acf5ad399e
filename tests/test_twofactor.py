"""Two-factor sign-in (django-otp TOTP + recovery codes), optional per account and required for
staff; the API token needs the second factor too. Codes are computed here from the key the
set-up page shows (RFC 6238, SHA-1, 30 s, 6 digits), as an authenticator app would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from recognition.accounts.models import AccountEvent

pytestmark = pytest.mark.django_db


def totp(secret_b32: str, at: float | None = None) -> str:
    """The 6-digit code of ``secret_b32`` at ``at`` (now), as an authenticator app computes it."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def set_up_two_factor(client: Client) -> tuple[str, list[str]]:
    """Through the pages: the set-up shows a QR code and the key; the first code turns it on and
    the recovery codes are shown once. Returns (key, recovery codes)."""
    page = client.get("/accounts/two-factor/setup/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html  # the QR code, inline
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)
    wrong = client.post("/accounts/two-factor/setup/", {"code": "000000" if totp(secret) != "000000" else "111111"})
    assert wrong.status_code == 400 and "not right" in wrong.content.decode()
    time.sleep(1.1)  # django-otp throttles a device for 1 s after a failure (doubling each time)
    done = client.post("/accounts/two-factor/setup/", {"code": totp(secret)})
    assert done.status_code == 200
    codes = re.findall(r"<li>([a-z0-9]+)</li>", done.content.decode().split('id="recovery-codes"')[1])
    assert len(codes) == 10
    return secret, codes


def test_totp_sign_in_with_a_real_code(client, user, password):
    client.force_login(user)
    Token.objects.create(user=user)  # made before two-factor: turning it on revokes it
    secret, _ = set_up_two_factor(client)
    assert not Token.objects.filter(user=user).exists()
    client.post("/accounts/logout/")

    fresh = Client()
    response = fresh.post("/accounts/login/", {"username": "alice", "password": password, "next": "/history/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/verify/"
    assert "_auth_user_id" not in fresh.session  # nobody is signed in with the password alone
    assert fresh.get("/history/").status_code == 302

    assert fresh.post("/accounts/login/verify/", {"code": "12345"}).status_code == 400
    assert "_auth_user_id" not in fresh.session
    time.sleep(2.1)  # the device's throttle after its second failure
    # The set-up used this time step's code: the next step's (30 s ahead, within the tolerance).
    response = fresh.post("/accounts/login/verify/", {"code": totp(secret, time.time() + 30)})
    assert response.status_code == 302 and response["Location"] == "/history/"
    assert fresh.session["_auth_user_id"] == str(user.pk)
    assert fresh.get("/history/").status_code == 200
    sign_in = AccountEvent.objects.filter(user=user, kind="sign_in").first()
    assert sign_in.detail == "with two-factor"
    # A used code does not work twice.
    again = Client()
    again.post("/accounts/login/", {"username": "alice", "password": password})
    assert again.post("/accounts/login/verify/", {"code": totp(secret, time.time() + 30)}).status_code == 400


def test_recovery_code_signs_in_once(client, user, password):
    client.force_login(user)
    _, codes = set_up_two_factor(client)
    for expected in (302, 400):
        other = Client()
        other.post("/accounts/login/", {"username": "alice", "password": password})
        response = other.post("/accounts/login/verify/", {"code": codes[0]})
        assert response.status_code == expected
    assert AccountEvent.objects.filter(user=user, kind="recovery_used").count() == 1


def test_second_step_needs_a_password_first_and_is_rate_limited(client, user, password, settings):
    assert client.get("/accounts/login/verify/")["Location"] == "/accounts/login/"
    assert client.post("/accounts/login/verify/", {"code": "123456"}).status_code == 302
    client.force_login(user)
    set_up_two_factor(client)
    client.post("/accounts/logout/")
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    client.post("/accounts/login/", {"username": "alice", "password": password})
    statuses = [client.post("/accounts/login/verify/", {"code": "000001"}).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    assert "_auth_user_id" not in client.session


def test_api_token_needs_the_second_factor(client, user, password):
    client.force_login(user)
    secret, codes = set_up_two_factor(client)
    api = APIClient()
    url = "/api/v1/auth/token/"
    missing = api.post(url, {"username": "alice", "password": password})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "otp_required"
    wrong = api.post(url, {"username": "alice", "password": password, "otp": "000000" if totp(secret, time.time() + 30) != "000000" else "111111"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "otp_invalid"
    time.sleep(1.1)  # a wrong code throttles every device of the account for 1 s (django-otp)
    ok = api.post(url, {"username": "alice", "password": password, "otp": codes[1]})
    assert ok.status_code == 200
    assert Token.objects.get(user=user).key == ok.json()["token"]
    # Accounts without two-factor sign-in are unchanged: username + password.
    assert APIClient().post(url, {"username": "nobody", "password": "x"}).status_code == 400


def test_account_page_token_needs_a_verified_session(client, user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(user)  # a session that never passed a second factor
    TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    assert client.post("/account/token/").status_code == 403
    assert not Token.objects.filter(user=user).exists()


def test_staff_must_set_up_two_factor(client, django_user_model, password):
    staff = django_user_model.objects.create_user("sam", password=password, is_staff=True, is_superuser=True)
    client.post("/accounts/login/", {"username": "sam", "password": password})
    response = client.get("/history/")
    assert response.status_code == 302 and response["Location"] == "/accounts/two-factor/?required=1"
    assert client.get(response["Location"])["Location"] == "/accounts/two-factor/setup/"
    assert client.get("/admin/").status_code == 302
    secret, _ = set_up_two_factor(client)
    assert client.get("/history/").status_code == 200
    assert client.get("/admin/").status_code == 200
    # Staff cannot turn it off.
    response = client.post("/accounts/two-factor/disable/", {"password": password})
    assert response.status_code == 403
    assert staff.totpdevice_set.filter(confirmed=True).exists()


def test_optional_for_others_and_can_be_turned_off(client, user, password):
    client.force_login(user)
    assert client.get("/history/").status_code == 200  # not required
    set_up_two_factor(client)
    assert client.post("/accounts/two-factor/disable/", {"password": "wrong"}).status_code == 400
    response = client.post("/accounts/two-factor/recovery/", {"password": password})
    assert response.status_code == 200 and len(re.findall(r"<li>[a-z0-9]+</li>", response.content.decode())) == 10
    assert client.post("/accounts/two-factor/disable/", {"password": password}).status_code == 302
    client.post("/accounts/logout/")
    response = client.post("/accounts/login/", {"username": "alice", "password": password})
    assert response["Location"] == "/" and client.session["_auth_user_id"] == str(user.pk)
    kinds = set(AccountEvent.objects.filter(user=user).values_list("kind", flat=True))
    assert {"2fa_on", "2fa_off", "recovery_new", "sign_in"} <= kinds


@pytest.mark.parametrize("path", ["/accounts/two-factor/setup/", "/accounts/two-factor/verify/",
                                  "/accounts/two-factor/recovery/", "/accounts/two-factor/disable/",
                                  "/accounts/login/verify/"])  # fmt: skip
def test_bad_input_is_a_4xx(client, user, path):
    client.force_login(user)
    for body in ({}, {"code": "x" * 500}, {"password": ""}, {"code": "\x00"}):
        assert 300 <= client.post(path, body).status_code < 500, (path, body)
