"""Accounts: sign-up, a friendlier log-out and a rate-limited log-in. Password change and reset
are Django's own auth views (wired in recognition/urls_accounts.py, templates in
templates/registration/)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from recognition.accounts import services as privacy_services
from recognition.accounts import views as privacy_views
from recognition.accounts.ratelimit import FailureLimiter


class SignupForm(UserCreationForm):
    """Username and password (checked by AUTH_PASSWORD_VALIDATORS), an e-mail address (required
    while REQUIRE_EMAIL_VERIFICATION is on: uploads wait for it to be verified) and consent to
    the processing of faces and voices (required; privacy.services.CONSENT_VERSION)."""

    email = forms.EmailField(
        required=False,
        help_text="Used to verify your account and to send you a password-reset link.",
    )
    consent = forms.BooleanField(
        required=True,
        label="I agree that emotionsite analyses the faces and voices in the photos, recordings, "
        "videos and live camera and microphone I send it, and keeps them as described above.",
        error_messages={
            "required": "Please agree to the processing of faces and voices: the site cannot "
            "analyse anything without it."
        },
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if settings.REQUIRE_EMAIL_VERIFICATION:
            self.fields["email"].required = True
            self.fields["email"].help_text = (
                "We send a link to verify it; uploads start once it is verified. Also used for "
                "password-reset links."
            )


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
        profile = privacy_services.start_account(
            user=user, consented=form.cleaned_data["consent"], request=request
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request, f"Welcome, {user.get_username()}! Your account is ready."
        )
        if profile.email_verification_required:
            messages.info(
                request,
                f"We sent a link to {user.email}: open it to verify your address, then upload.",
            )
        return redirect(_safe_next(request) or settings.LOGIN_REDIRECT_URL)
    return render(
        request,
        "registration/signup.html",
        {
            "form": form,
            "next": _safe_next(request) or "",
            "retention": privacy_services.site_policy(),
        },
    )


class SiteLogoutView(LogoutView):
    """Django's POST-only log-out, plus a message on the page it lands on."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        was_signed_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_signed_in:
            messages.info(request, "You have been logged out.")
        return response


login_failures = FailureLimiter("login-fail", window=settings.LOGIN_FAILURE_WINDOW)
TOO_MANY_LOGINS = (
    "Too many failed log-in attempts. Please wait a few minutes before trying again, or reset "
    "your password."
)


class RateLimitedLoginView(LoginView):
    """Django's log-in, with failed attempts limited per client address and per (address,
    username) within LOGIN_FAILURE_WINDOW seconds: password guessing gets a 429, not more tries.
    (The API's token endpoint has its own throttle.)"""

    redirect_authenticated_user = True

    def form_valid(self, form) -> HttpResponse:
        """The password is right; an account with two-factor sign-in is not signed in until its
        code is checked (privacy.views.login_verify)."""
        user = form.get_user()
        if privacy_services.has_two_factor(user):
            return privacy_views.begin_second_step(self.request, user, self.get_success_url())
        return super().form_valid(form)

    def _keys(self) -> dict[str, str]:
        ip = self.request.META.get("REMOTE_ADDR", "")
        username = str(self.request.POST.get("username", ""))[:150].strip().lower()
        return {"ip": ip, "user": f"{ip}|{username}"}

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        keys = self._keys()
        limits = {
            "ip": settings.LOGIN_FAILURES_PER_IP,
            "user": settings.LOGIN_FAILURES_PER_USERNAME,
        }
        if login_failures.blocked(keys, limits):
            messages.error(request, TOO_MANY_LOGINS)
            response = self.render_to_response(
                self.get_context_data(
                    form=self.form_class(
                        request,
                        initial={"username": request.POST.get("username", "")[:150]},
                    )
                )
            )
            response.status_code = 429
            return response
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:  # the form came back with an error: a failure
            login_failures.fail(keys)
        else:
            login_failures.clear("user", keys["user"])
        return response
