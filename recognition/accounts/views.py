"""Pages of the privacy features: the account page (retention, sign-ins, API token, deletions),
two-factor set-up and the second sign-in step, e-mail verification. Thin: forms check input,
``services`` act, ``selectors`` read. Wrong input is a 400 page, never a 500."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from recognition.accounts import selectors, services
from recognition.accounts.forms import (
    CodeForm,
    PasswordConfirmForm,
    RetentionForm,
    TotpCodeForm,
)
from recognition.accounts.ratelimit import FailureLimiter

PENDING = "privacy-2fa-pending"  # session key: a password accepted, the second factor awaited
PENDING_SECONDS = 300
second_factor_failures = FailureLimiter("otp-fail", window=settings.LOGIN_FAILURE_WINDOW)


def _verified(request: HttpRequest) -> bool:
    user = request.user
    return bool(getattr(user, "is_verified", None) and user.is_verified())


# --- account page ------------------------------------------------------------------------------


def _account_page(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    overview = selectors.account_overview(request.user)
    policy = overview["policy"]
    form = extra.pop("retention_form", None) or RetentionForm(
        initial={
            "retention": overview["profile"].retention if overview["profile"] else "default",
            "retention_days": policy.days,  # the days in force (the site's while on its default)
        }
    )
    context = {**overview, "retention_form": form, "verified_session": _verified(request), **extra}
    return render(request, "privacy/account.html", context, status=status)


@login_required
@require_GET
@never_cache
def account(request: HttpRequest) -> HttpResponse:
    return _account_page(request)


@login_required
@require_POST
def account_retention(request: HttpRequest) -> HttpResponse:
    form = RetentionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Please correct the retention setting below.")
        return _account_page(request, status=400, retention_form=form)
    services.set_retention(
        user=request.user,
        mode=form.cleaned_data["retention"],
        days=form.cleaned_data["retention_days"],
        request=request,
    )
    messages.success(request, "Retention setting saved.")
    return redirect("account")


@login_required
@require_POST
@never_cache
def account_token(request: HttpRequest) -> HttpResponse:
    """Create the API token from a signed-in session (one that passed its second factor, when
    the account has one); the key is shown once, on this answer."""
    try:
        token = services.issue_token(user=request.user, request=request, verified=_verified(request))
    except services.SecondFactorRequired as exc:
        messages.error(request, exc.message.replace("send `otp`, ", "sign in again with "))
        return _account_page(request, status=403)
    return _account_page(request, new_token=token.key)


@login_required
@require_POST
def account_token_revoke(request: HttpRequest) -> HttpResponse:
    if services.revoke_token(user=request.user, request=request, reason="from the account page"):
        messages.success(request, "Your API token was revoked: requests with it now answer 401.")
    else:
        messages.info(request, "You had no API token.")
    return redirect("account")


@login_required
@require_POST
def resend_verification(request: HttpRequest) -> HttpResponse:
    key = f"verify-email-sent:{request.user.pk}"
    if not cache.add(key, 1, 60):
        messages.error(request, "A link was sent less than a minute ago. Please check your mail.")
        return _account_page(request, status=429)
    if services.send_verification(user=request.user, request=request):
        messages.success(request, f"We sent a new link to {request.user.email}.")
    else:
        messages.error(request, "Your account has no e-mail address.")
    return redirect("account")


# --- e-mail verification -----------------------------------------------------------------------


@require_GET
@never_cache
def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user = services.verify_email(token=token, request=request)
    except services.VerificationFailed as exc:
        return render(request, "privacy/verify_email.html", {"ok": False, "message": str(exc)}, status=400)
    return render(request, "privacy/verify_email.html", {"ok": True, "verified_user": user})


# --- two-factor: set-up and management ---------------------------------------------------------


def _two_factor_page(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    on = services.has_two_factor(request.user)
    context = {
        "two_factor": on,
        "verified_session": _verified(request),
        "required": request.user.is_staff,
        "code_form": extra.pop("code_form", None) or CodeForm(),
        "password_form": extra.pop("password_form", None) or PasswordConfirmForm(),
        **extra,
    }
    if on:
        from django_otp.plugins.otp_static.models import StaticToken

        context["codes_left"] = StaticToken.objects.filter(device__user=request.user).count()
    return render(request, "privacy/two_factor.html", context, status=status)


@login_required
@require_GET
@never_cache
def two_factor(request: HttpRequest) -> HttpResponse:
    if request.GET.get("required") and request.user.is_staff and not services.has_two_factor(request.user):
        messages.info(request, "Staff accounts must use two-factor sign-in. Please set it up to continue.")
        return redirect("two-factor-setup")
    return _two_factor_page(request)


@login_required
@require_http_methods(["GET", "POST"])
@never_cache
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    if services.has_two_factor(request.user):
        return redirect("two-factor")
    device = services.start_totp(request.user)
    form = TotpCodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            done = services.confirm_totp(user=request.user, code=form.cleaned_data["code"], request=request)
            if done is not None:
                confirmed, codes = done
                from django_otp import login as otp_login

                otp_login(request, confirmed)  # this session has just passed the second factor
                return render(request, "privacy/recovery_codes.html", {"codes": codes, "new": True})
            form.add_error("code", "That code is not right. Check the clock of your phone and try the next one.")
        status = 400
    return render(
        request,
        "privacy/two_factor_setup.html",
        {"form": form, "qr_svg": services.qr_svg(device), "secret": services.base32_key(device)},
        status=status,
    )


@login_required
@require_POST
@sensitive_post_parameters("code")
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """A signed-in session that has not passed the second factor yet (e.g. staff)."""
    form = CodeForm(request.POST)
    device = None
    if form.is_valid():
        device = services.verify_second_factor(user=request.user, code=form.cleaned_data["code"], request=request)
    if device is None:
        if form.is_valid():
            form.add_error("code", "That code is not right.")
        return _two_factor_page(request, status=400, code_form=form)
    from django_otp import login as otp_login

    otp_login(request, device)
    messages.success(request, "Two-factor check passed.")
    return redirect(settings.LOGIN_REDIRECT_URL)


@login_required
@require_POST
@sensitive_post_parameters("password")
def two_factor_recovery(request: HttpRequest) -> HttpResponse:
    form = PasswordConfirmForm(request.POST, user=request.user)
    if not services.has_two_factor(request.user):
        return redirect("two-factor")
    if not form.is_valid():
        return _two_factor_page(request, status=400, password_form=form)
    codes = services.new_recovery_codes(request.user, request=request)
    return render(request, "privacy/recovery_codes.html", {"codes": codes, "new": False})


@login_required
@require_POST
@sensitive_post_parameters("password")
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    form = PasswordConfirmForm(request.POST, user=request.user)
    if not form.is_valid():
        return _two_factor_page(request, status=400, password_form=form)
    if request.user.is_staff:
        messages.error(request, "Staff accounts must keep two-factor sign-in on.")
        return _two_factor_page(request, status=403)
    services.disable_two_factor(user=request.user, request=request)
    messages.success(request, "Two-factor sign-in is off.")
    return redirect("two-factor")


# --- sign-in, second step ----------------------------------------------------------------------


def begin_second_step(request: HttpRequest, user: Any, next_url: str) -> HttpResponse:
    """Called by the log-in page once the password is right for an account with two-factor
    sign-in: nobody is signed in until the code is checked."""
    request.session.cycle_key()
    request.session[PENDING] = {
        "user": user.pk,
        "backend": getattr(user, "backend", "django.contrib.auth.backends.ModelBackend"),
        "next": next_url,
        "at": time.time(),
    }
    return redirect("login-verify")


@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("code")
@never_cache
def login_verify(request: HttpRequest) -> HttpResponse:
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        if request.method == "POST":
            messages.error(request, "Your sign-in took too long. Please enter your password again.")
        return redirect(settings.LOGIN_URL)
    user = get_user_model().objects.filter(pk=pending.get("user"), is_active=True).first()
    if user is None:
        request.session.pop(PENDING, None)
        return redirect(settings.LOGIN_URL)
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        ip = request.META.get("REMOTE_ADDR", "")
        keys = {"ip": ip, "user": f"{ip}|{user.pk}"}
        limits = {"ip": settings.LOGIN_FAILURES_PER_IP, "user": settings.LOGIN_FAILURES_PER_USERNAME}
        if second_factor_failures.blocked(keys, limits):
            request.session.pop(PENDING, None)
            messages.error(request, "Too many wrong codes. Please wait a few minutes and sign in again.")
            return render(request, "privacy/login_verify.html", {"form": form, "blocked": True}, status=429)
        device = None
        if form.is_valid():
            device = services.verify_second_factor(user=user, code=form.cleaned_data["code"], request=request)
        if device is not None:
            del request.session[PENDING]
            user.otp_device = device  # django-otp stores it in the session on login
            login(request, user, backend=pending["backend"])
            second_factor_failures.clear("user", keys["user"])
            target = pending.get("next") or ""
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = settings.LOGIN_REDIRECT_URL
            return redirect(target)
        second_factor_failures.fail(keys)
        if form.is_valid():
            form.add_error("code", "That code is not right. Try the next one, or a recovery code.")
        status = 400
    return render(request, "privacy/login_verify.html", {"form": form}, status=status)
