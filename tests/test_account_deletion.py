"""Deleting an account: the password (and the second factor when it is on) asked again, then the
user, every analysis, every stored file (the whole users/<id>/ folder), corrections, tokens and
the account log gone, the session signed out; nothing of another user touched; a wrong password
or code deletes nothing. The same on S3: tests/test_two_hosts.py deletes an account there."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from recognition.accounts.models import AccountEvent
from recognition.analyses import services
from recognition.analyses.models import Analysis
from recognition.corrections.models import Correction

from .test_twofactor import set_up_two_factor, totp

pytestmark = pytest.mark.django_db(transaction=True)  # file deletion runs on commit


def stored(root) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture
def alice_with_data(client, user, other_user, face_photo, settings):
    first = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    (Path(settings.MEDIA_ROOT) / f"users/{user.pk}/stray.bin").write_bytes(b"a file no record names")
    kept = services.create_analysis(owner=other_user, upload=face_photo, enqueue=False)
    Correction.objects.create(owner=user, analysis=first, item="face-0", task="face", label="happy")
    Token.objects.create(user=user)
    client.force_login(user)
    return kept


def test_the_account_page_links_to_it_and_the_form_asks_for_the_password(client, user):
    client.force_login(user)
    assert '/account/delete/"' in client.get("/account/").content.decode()
    page = client.get("/account/delete/").content.decode()
    assert 'name="password"' in page and 'autocomplete="current-password"' in page
    assert 'name="code"' not in page  # no second factor: no code asked


def test_deleting_removes_the_user_their_data_and_files_and_signs_out(client, user, other_user, alice_with_data, password, settings):
    assert Analysis.objects.filter(owner=user).count() == 2
    response = client.post("/account/delete/", {"password": password})
    assert response.status_code == 302 and response["Location"] == "/"
    assert not type(user).objects.filter(pk=user.pk).exists()
    assert not Analysis.objects.filter(owner_id=user.pk).exists()
    assert not Correction.objects.filter(owner_id=user.pk).exists()
    assert not Token.objects.filter(user_id=user.pk).exists()
    assert not AccountEvent.objects.filter(user_id=user.pk).exists()
    assert not (Path(settings.MEDIA_ROOT) / f"users/{user.pk}").exists()  # the stray file too
    assert list(Analysis.objects.all()) == [alice_with_data]
    assert stored(settings.MEDIA_ROOT) and all(f"users/{other_user.pk}/" in str(p) for p in stored(settings.MEDIA_ROOT))
    assert client.get("/account/").status_code == 302  # signed out
    assert "Your account was deleted, with 2 analyses" in client.get("/", follow=True).content.decode()


@pytest.mark.parametrize("form", [{}, {"password": ""}, {"password": "not-the-password"}, {"password": "x" * 5000}])
def test_a_wrong_or_missing_password_deletes_nothing(client, user, alice_with_data, settings, form):
    before = stored(settings.MEDIA_ROOT)
    response = client.post("/account/delete/", form)
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert type(user).objects.filter(pk=user.pk).exists()
    assert Analysis.objects.filter(owner=user).count() == 2
    assert stored(settings.MEDIA_ROOT) == before


def test_with_two_factor_on_the_code_is_asked_too(client, user, password, face_photo):
    client.force_login(user)
    secret, codes = set_up_two_factor(client)
    services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    assert 'name="code"' in client.get("/account/delete/").content.decode()
    assert client.post("/account/delete/", {"password": password}).status_code == 400
    wrong = "000000" if totp(secret, time.time() + 30) != "000000" else "111111"
    assert client.post("/account/delete/", {"password": password, "code": wrong}).status_code == 400
    assert type(user).objects.filter(pk=user.pk).exists() and Analysis.objects.filter(owner=user).count() == 1
    time.sleep(1.1)  # django-otp throttles a device for 1 s after a failure
    assert client.post("/account/delete/", {"password": password, "code": codes[0]}).status_code == 302
    assert not type(user).objects.filter(pk=user.pk).exists()


def test_anonymous_visitors_are_sent_to_sign_in_and_get_is_harmless(client, user, alice_with_data):
    anonymous = type(client)()
    assert anonymous.post("/account/delete/", {"password": "x"}).status_code == 302
    assert client.get("/account/delete/").status_code == 200
    assert type(user).objects.filter(pk=user.pk).exists()
    assert client.put("/account/delete/").status_code == 405
