"""Consent and e-mail verification at sign-up, retention (the service and the history), the
account page (sign-ins, API token, deletions) and nothing left on disk for a deleted analysis.
The retention task through a real Celery worker is in tests/test_retention_worker.py."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from recognition.accounts import services as privacy
from recognition.accounts.models import AccountEvent, Profile, RemovedMedia
from recognition.analyses import retention, services
from recognition.analyses.models import Analysis
from tests.bad_inputs import face_jpeg

pytestmark = pytest.mark.django_db
PASSWORD = "plum-orbit-lantern-47"
SIGNUP = {"username": "carol", "email": "carol@example.com", "password1": PASSWORD, "password2": PASSWORD}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def files_under(root) -> list[str]:
    root = Path(root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def backdate(analysis: Analysis, days: float) -> None:
    Analysis.objects.filter(pk=analysis.pk).update(created=timezone.now() - timedelta(days=days))


# --- sign-up: what is processed, consent, verified e-mail --------------------------------------


def test_signup_states_what_is_processed_and_asks_for_consent(client):
    html = client.get("/accounts/signup/").content.decode()
    assert "What we process and keep" in html
    assert "faces" in html and "voices" in html and "365 days" in html
    assert 'name="consent"' in html and 'for="id_consent"' in html


def test_consent_is_required_at_signup(client):
    response = client.post("/accounts/signup/", SIGNUP)
    assert response.status_code == 200
    assert "Please agree to the processing of faces and voices" in response.content.decode()
    assert not get_user_model().objects.filter(username="carol").exists()


def test_signup_records_consent_and_verifies_the_email_before_uploads(client, settings, face_photo):
    response = client.post("/accounts/signup/", {**SIGNUP, "consent": "on"})
    assert response.status_code == 302
    user = get_user_model().objects.get(username="carol")
    profile = Profile.objects.get(user=user)
    assert profile.consent_at and profile.consent_version == privacy.CONSENT_VERSION
    assert profile.email_verification_required

    # Uploads wait: the page (403 with a message), the API (403 email_unverified).
    assert "verify your e-mail address" in client.get("/upload/").content.decode()
    refused = client.post("/upload/", {"file": _upload(face_photo)}, HTTP_ACCEPT="application/json")
    assert refused.status_code == 403 and "verify your e-mail" in refused.json()["error"]
    api = APIClient()
    api.force_authenticate(user)
    answer = api.post("/api/v1/analyses/", {"file": _upload(face_photo)}, format="multipart")
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "email_unverified"
    assert not Analysis.objects.filter(owner=user).exists()

    # The link (console e-mail on the embedded default; the test outbox here) verifies it once.
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["carol@example.com"]
    link = re.search(r"http://testserver(/accounts/verify-email/\S+/)", mail.outbox[0].body).group(1)
    assert Client().get(link.replace("/accounts/verify-email/", "/accounts/verify-email/x")).status_code == 400
    assert Client().get(link).status_code == 200  # works without being signed in
    profile.refresh_from_db()
    assert not profile.email_verification_required and profile.email_verified_at
    created = client.post("/upload/", {"file": _upload(face_photo)}, HTTP_ACCEPT="application/json")
    assert created.status_code == 201


def test_email_is_optional_when_verification_is_off(client, settings):
    settings.REQUIRE_EMAIL_VERIFICATION = False
    response = client.post("/accounts/signup/", {**SIGNUP, "email": "", "consent": "on"})
    assert response.status_code == 302
    assert privacy.may_upload(get_user_model().objects.get(username="carol"))
    assert mail.outbox == []


def test_a_verification_link_for_an_old_address_fails(client):
    client.post("/accounts/signup/", {**SIGNUP, "consent": "on"})
    user = get_user_model().objects.get(username="carol")
    token = privacy.verification_token(user)
    user.email = "new@example.com"
    user.save()
    assert client.get(f"/accounts/verify-email/{token}/").status_code == 400
    assert not privacy.may_upload(user)
    # A new link can be sent from the account page (not more than once a minute).
    assert client.post("/account/verify-email/").status_code == 302
    assert client.post("/account/verify-email/").status_code == 429
    assert mail.outbox[-1].to == ["new@example.com"]


def test_accounts_made_by_administrators_upload_at_once(user, face_photo):
    """create_user / createsuperuser / existing accounts: no sign-up, no pending verification."""
    assert privacy.may_upload(user)
    assert services.create_analysis(owner=user, upload=face_photo, filename="a.jpg", enqueue=False).pk


def _upload(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("face.jpg", data, content_type="image/jpeg")


# --- retention ---------------------------------------------------------------------------------


def test_retention_deletes_files_and_keeps_results(user, settings, django_capture_on_commit_callbacks):
    settings.RETENTION_DEFAULT, settings.RETENTION_DAYS = "media", 30
    old = services.create_analysis(owner=user, upload=face_jpeg(), enqueue=False)
    Analysis.objects.filter(pk=old.pk).update(status="done", emotion="happy", result={"faces": [{"emotion": "happy"}]})
    new = services.create_analysis(owner=user, upload=face_jpeg(), enqueue=False)
    backdate(old, 31)
    old_files = [n for n in files_under(settings.MEDIA_ROOT) if old.uid.hex in n]
    assert len(old_files) >= 2  # the original and its renditions

    with django_capture_on_commit_callbacks(execute=True):  # files go once the deletion commits
        totals = retention.purge_expired()

    assert totals["media"] == 1
    assert not [n for n in files_under(settings.MEDIA_ROOT) if old.uid.hex in n]
    assert [n for n in files_under(settings.MEDIA_ROOT) if new.uid.hex in n]
    old.refresh_from_db()
    assert old.status == "done" and old.result["faces"] and not old.media
    assert RemovedMedia.objects.filter(analysis=old).exists()
    event = AccountEvent.objects.get(user=user, kind="expired_media")
    assert event.count == 1
    assert retention.purge_expired()["media"] == 0  # repeatable


def test_account_setting_overrides_the_site_default(user, other_user, settings, django_capture_on_commit_callbacks):
    settings.RETENTION_DEFAULT = "keep"
    mine = services.create_analysis(owner=user, upload=face_jpeg(), enqueue=False)
    theirs = services.create_analysis(owner=other_user, upload=face_jpeg(), enqueue=False)
    Analysis.objects.update(status="done")
    backdate(mine, 10)
    backdate(theirs, 10)
    privacy.set_retention(user=user, mode="all", days=7)
    with django_capture_on_commit_callbacks(execute=True):
        assert retention.purge_expired()["all"] == 1
    assert not Analysis.objects.filter(pk=mine.pk).exists()
    assert Analysis.objects.filter(pk=theirs.pk).exists()
    assert not [n for n in files_under(settings.MEDIA_ROOT) if mine.uid.hex in n]
    assert AccountEvent.objects.get(user=user, kind="expired_all").count == 1


def test_history_shows_when_each_file_goes(alice_client, user, settings):
    settings.RETENTION_DEFAULT, settings.RETENTION_DAYS = "media", 30
    analysis = services.create_analysis(owner=user, upload=face_jpeg(), enqueue=False)
    expected = (analysis.created + timedelta(days=30)).strftime("%-d %b %Y")
    html = alice_client.get("/history/").content.decode()
    assert f"File will be deleted on" in html and expected in html
    privacy.set_retention(user=user, mode="keep", days=30)
    assert "File kept until you delete it" in alice_client.get("/history/").content.decode()
    settings.RETENTION_DEFAULT = "media"
    privacy.set_retention(user=user, mode="default", days=30)
    Analysis.objects.filter(pk=analysis.pk).update(status="done")
    backdate(analysis, 40)
    retention.purge_expired()
    html = alice_client.get("/history/").content.decode()
    assert "File deleted on" in html and "results kept" in html
    detail = alice_client.get(f"/analyses/{analysis.pk}/")
    assert detail.status_code == 200 and "File deleted on" in detail.content.decode()
    assert alice_client.get(f"/analyses/{analysis.pk}/media/").status_code == 404


def test_retention_form_rejects_bad_input_with_400(alice_client, user):
    for body in ({}, {"retention": "forever", "retention_days": "5"}, {"retention": "media", "retention_days": "0"},
                 {"retention": "media", "retention_days": "x" * 50}):  # fmt: skip
        assert alice_client.post("/account/retention/", body).status_code == 400
    response = alice_client.post("/account/retention/", {"retention": "media", "retention_days": "14"})
    assert response.status_code == 302
    assert privacy.policy_for(user).days == 14 and privacy.policy_for(user).mode == "media"


# --- nothing left on disk ----------------------------------------------------------------------


def test_deleting_an_analysis_leaves_no_file(alice_client, user, settings, django_capture_on_commit_callbacks):
    kept = services.create_analysis(owner=user, upload=face_jpeg(), enqueue=False)
    page = services.create_analysis(owner=user, upload=face_jpeg(), enqueue=False)
    api = services.create_analysis(owner=user, upload=face_jpeg(), enqueue=False)
    before = files_under(settings.MEDIA_ROOT)
    assert any(page.uid.hex in n for n in before) and any(api.uid.hex in n for n in before)

    client = APIClient()
    client.force_authenticate(user)
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_client.post(f"/analyses/{page.pk}/delete/").status_code == 302
        assert client.delete(f"/api/v1/analyses/{api.pk}/").status_code == 204

    after = files_under(settings.MEDIA_ROOT)
    assert not [n for n in after if page.uid.hex in n or api.uid.hex in n], after
    assert [n for n in after if kept.uid.hex in n]
    assert set(after) <= set(before)
    # Deleting everything leaves no folder for the account at all.
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_client.post("/account/delete-data/").status_code == 302
    assert files_under(settings.MEDIA_ROOT) == []
    assert not (Path(settings.MEDIA_ROOT) / f"users/{user.pk}").exists()
    kinds = list(AccountEvent.objects.filter(user=user).values_list("kind", flat=True))
    assert kinds.count("deleted") == 2 and kinds.count("deleted_all") == 1


# --- the account page --------------------------------------------------------------------------


def test_account_page_lists_sign_ins_tokens_and_deletions(client, user, other_user, password):
    assert client.post("/accounts/login/", {"username": "alice", "password": password},
                       HTTP_USER_AGENT="TestBrowser/1.0").status_code == 302  # fmt: skip
    token = APIClient().post("/api/v1/auth/token/", {"username": "alice", "password": password}).json()["token"]
    analysis = services.create_analysis(owner=user, upload=face_jpeg(), enqueue=False)
    services.delete_analysis(owner=user, analysis_id=analysis.pk)
    old = AccountEvent.objects.create(user=user, kind="sign_in", ip="10.9.9.9")
    AccountEvent.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=91))
    # mallory's sign-in is hers only
    Client().post("/accounts/login/", {"username": "mallory", "password": password}, REMOTE_ADDR="10.7.7.7")

    html = client.get("/account/").content.decode()
    assert "Sign-ins, last 90 days" in html and "TestBrowser/1.0" in html and "127.0.0.1" in html
    assert "10.9.9.9" not in html and "10.7.7.7" not in html
    assert token[:4] in html and token not in html  # the key is never shown again
    assert "Analysis deleted" in html and f"Image #{analysis.pk}" in html

    response = client.post("/account/token/revoke/")
    assert response.status_code == 302
    assert not Token.objects.filter(user=user).exists()
    assert APIClient(HTTP_AUTHORIZATION=f"Token {token}").get("/api/v1/analyses/").status_code == 401
    assert "API token revoked" in client.get("/account/").content.decode()
    # A new one from the page (no two-factor on this account): shown once.
    created = client.post("/account/token/")
    assert created.status_code == 200 and Token.objects.get(user=user).key in created.content.decode()

    assert privacy.prune_events() == 1  # the 91-day-old entry
