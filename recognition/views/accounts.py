"""Accounts: sign-up and a friendlier log-out. Log-in, password change and reset are Django's
own auth views (wired in recognition/urls_accounts.py, templates in templates/registration/)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters


class SignupForm(UserCreationForm):
    """Username and password (checked by AUTH_PASSWORD_VALIDATORS), plus an optional e-mail
    address: without one, the password-reset flow cannot reach the person."""

    email = forms.EmailField(
        required=False,
        help_text="Optional. Only used to send you a password-reset link.",
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


def _safe_next(request: HttpRequest) -> str | None:
    """The ?next= / POST next target if it stays on this site, else None (no open redirect)."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


@sensitive_post_parameters("password1", "password2")
@csrf_protect
@never_cache
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and sign the new user in straight away."""
    if request.user.is_authenticated:
        return redirect(_safe_next(request) or settings.LOGIN_REDIRECT_URL)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request, f"Welcome, {user.get_username()}! Your account is ready."
        )
        return redirect(_safe_next(request) or settings.LOGIN_REDIRECT_URL)
    return render(
        request,
        "registration/signup.html",
        {"form": form, "next": _safe_next(request) or ""},
    )


class SiteLogoutView(LogoutView):
    """Django's POST-only log-out, plus a message on the page it lands on."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        was_signed_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_signed_in:
            messages.info(request, "You have been logged out.")
        return response
