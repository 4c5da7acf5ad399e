"""Accounts and the site shell: sign-up, log-in/out, password change and reset, access control,
CSRF, security headers, and the navigation every page inherits from base.html."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core import mail
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "plum-orbit-lantern-47"


def _signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


# --- Sign-up ---------------------------------------------------------------------------------


def test_signup_creates_the_user_and_signs_them_in(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "carol",
            "email": "carol@example.com",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "consent": "on",
        },
    )

    assert response.status_code == 302 and response["Location"] == "/"
    user = get_user_model().objects.get(username="carol")
    assert user.email == "carol@example.com"
    assert user.check_password(NEW_PASSWORD)
    assert _signed_in_user_id(client) == str(user.pk)
    home = client.get("/")
    assert "carol" in home.content.decode()
    assert "Welcome, carol" in home.content.decode()


def test_signup_follows_a_safe_next_and_ignores_an_offsite_one(client):
    form = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "consent": "on"}
    response = client.post(
        "/accounts/signup/?next=/accounts/password_change/",
        {"username": "dave", "email": "dave@example.com", **form},
    )
    assert response["Location"] == "/accounts/password_change/"

    client.post(reverse("logout"))
    response = client.post(
        "/accounts/signup/?next=https://evil.example/steal",
        {"username": "erin", "email": "erin@example.com", **form},
    )
    assert response["Location"] == "/"


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("frank", "short7", "too short"),
        ("grace", "password123", "too common"),
        ("heidi", "8437261950", "entirely numeric"),
        ("ivanovich", "ivanovich1", "too similar to the username"),
    ],
)
def test_signup_rejects_weak_passwords(client, username, password, message):
    response = client.post(
        "/accounts/signup/",
        {"username": username, "password1": password, "password2": password},
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not get_user_model().objects.filter(username=username).exists()
    assert _signed_in_user_id(client) is None


def test_signup_rejects_mismatched_passwords_and_taken_usernames(client, user):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "judy",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD + "x",
        },
    )
    assert "didn’t match" in response.content.decode()
    response = client.post(
        "/accounts/signup/",
        {
            "username": user.username,
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert "already exists" in response.content.decode()
    assert get_user_model().objects.count() == 1


def test_signed_in_user_visiting_signup_or_login_goes_home(alice_client):
    assert alice_client.get("/accounts/signup/")["Location"] == "/"
    assert alice_client.get("/accounts/login/")["Location"] == "/"


# --- Log-in and log-out ---------------------------------------------------------------------


def test_login_then_logout(client, user, password):
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": password}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert _signed_in_user_id(client) == str(user.pk)

    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert _signed_in_user_id(client) is None
    assert "You have been logged out." in client.get("/").content.decode()


def test_login_with_a_wrong_password_fails(client, user):
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "not-the-password"}
    )
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert _signed_in_user_id(client) is None


def test_login_returns_to_the_page_that_asked(client, user, password):
    response = client.post(
        "/accounts/login/?next=/accounts/password_change/",
        {
            "username": "alice",
            "password": password,
            "next": "/accounts/password_change/",
        },
    )
    assert response["Location"] == "/accounts/password_change/"


def test_logout_refuses_get(alice_client, user):
    """Logging out changes state, so a link (GET) must not do it: only the POST form."""
    response = alice_client.get("/accounts/logout/")
    assert response.status_code == 405
    assert _signed_in_user_id(alice_client) == str(user.pk)


# --- Passwords -------------------------------------------------------------------------------


def test_password_change(alice_client, user, password):
    response = alice_client.post(
        "/accounts/password_change/",
        {
            "old_password": password,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse(
        "password_change_done"
    )
    assert alice_client.get(response["Location"]).status_code == 200  # still signed in

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert Client().login(username="alice", password=NEW_PASSWORD)
    assert not Client().login(username="alice", password=password)


def test_password_change_rejects_a_wrong_old_password_and_weak_new_ones(
    alice_client, user, password
):
    response = alice_client.post(
        "/accounts/password_change/",
        {
            "old_password": "wrong-old-password",
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert "Your old password was entered incorrectly" in response.content.decode()
    response = alice_client.post(
        "/accounts/password_change/",
        {
            "old_password": password,
            "new_password1": "12345678",
            "new_password2": "12345678",
        },
    )
    assert response.status_code == 200
    assert "too common" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(password)


def test_password_reset_by_email(client, user):
    user.email = "alice@example.com"
    user.save()

    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    assert mail.outbox[0].subject == "Reset your emotionsite password"
    link = re.search(
        r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body
    ).group(1)

    # Django swaps the token in the link for a session marker and redirects.
    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"] is True
    set_password_url = form_page.redirect_chain[-1][0]
    response = client.post(
        set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response["Location"] == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)

    # The link works once.
    assert client.get(link, follow=True).context["validlink"] is False


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(
    client, user
):
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.com"})
    # Same answer as for a known address: no account enumeration.
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


# --- Access control, CSRF, headers ----------------------------------------------------------

# Every page that shows an account's data (the route contract in the helper brief).
PRIVATE_PAGES = [
    "/accounts/password_change/",
    "/accounts/password_change/done/",
    "/upload/",
    "/history/",
    "/dashboard/",
    "/live/",
    "/analyses/1/",
    "/analyses/1/media/",
]


@pytest.mark.parametrize("path", PRIVATE_PAGES)
def test_anonymous_users_are_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"
    assert (
        "Please log in to see that page."
        in client.get(response["Location"]).content.decode()
    )


def test_login_form_enforces_csrf(user, password):
    client = Client(enforce_csrf_checks=True)
    credentials = {"username": "alice", "password": password}

    assert client.post("/accounts/login/", credentials).status_code == 403
    assert _signed_in_user_id(client) is None

    page = client.get("/accounts/login/")
    token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()
    ).group(1)
    response = client.post(
        "/accounts/login/", {**credentials, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert _signed_in_user_id(client) == str(user.pk)


def test_signup_and_logout_enforce_csrf(user):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/accounts/signup/",
        {"username": "kim", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="kim").exists()

    client.force_login(user)
    # No forced log-out from other sites.
    assert client.post("/accounts/logout/").status_code == 403
    assert _signed_in_user_id(client) == str(user.pk)


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/signup/"])
def test_security_headers(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


# --- Layout ------------------------------------------------------------------------------------

NAV_PATHS = ["/upload/", "/history/", "/dashboard/", "/live/", "/api/docs/"]


def test_anonymous_navigation_offers_login_and_signup(client):
    html = client.get("/").content.decode()
    for path in NAV_PATHS:
        assert f'href="{path}"' in html
    assert 'href="/accounts/login/"' in html and 'href="/accounts/signup/"' in html
    assert 'action="/accounts/logout/"' not in html
    assert 'href="/" aria-current="page"' in html


def test_signed_in_navigation_has_the_account_menu(alice_client):
    html = alice_client.get("/").content.decode()
    assert "alice" in html
    assert 'href="/accounts/password_change/"' in html
    assert re.search(
        r'<form method="post" action="/accounts/logout/">\s*<input type="hidden" name="csrfmiddlewaretoken"',
        html,
    )
    header = html.split("<main", 1)[0]
    assert 'href="/accounts/signup/"' not in header
    assert 'href="/upload/"' in html  # calls to action point at the signed-in features


@pytest.mark.parametrize(
    ("path", "current"),
    [
        ("/", '<a class="brand" href="/" aria-current="page">'),
        ("/upload/", '<a href="/upload/" aria-current="page">Upload</a>'),
        ("/history/?kind=image", '<a href="/history/" aria-current="page">History</a>'),
        ("/analyses/7/", '<a href="/history/" aria-current="page">History</a>'),
        ("/dashboard/", '<a href="/dashboard/" aria-current="page">Dashboard</a>'),
        ("/live/", '<a href="/live/" aria-current="page">Live</a>'),
    ],
)
def test_active_page_is_marked(rf, user, path, current):
    """base.html marks exactly one navigation link as the current page, whatever view renders it."""
    request = rf.get(path)
    request.user = user
    html = render_to_string("base.html", request=request)
    header = html.split("<main", 1)[0]
    assert current in header
    assert header.count('aria-current="page"') == 1


def test_no_nav_link_is_marked_on_account_pages(alice_client):
    html = alice_client.get("/accounts/password_change/").content.decode()
    assert 'aria-current="page"' not in html.split("<main", 1)[0]


def test_staff_see_the_admin_link_and_others_do_not(
    client, user, django_user_model, password
):
    client.force_login(user)
    assert "/admin/" not in client.get("/").content.decode()
    staff = django_user_model.objects.create_user(
        username="sam", password=password, is_staff=True, is_superuser=True
    )
    client.force_login(staff)
    # Staff must use two-factor sign-in (tests/test_twofactor.py): pass it for this session.
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=staff, name="app", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    assert 'href="/admin/"' in client.get("/").content.decode()
    assert client.get("/admin/").status_code == 200


def test_page_loads_nothing_from_other_sites(client):
    """No CDN: the site works offline, so every stylesheet and script is our own."""
    html = client.get("/").content.decode()
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)"', html) == [
        "/static/css/site.css"
    ]
    assert not re.search(r'(?:href|src)="(?:https?:)?//', html)
    assert finders.find("css/site.css"), "the stylesheet is vendored under static/"
