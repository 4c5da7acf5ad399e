"""Writes of the accounts app (the privacy features): the account log, consent, e-mail verification, two-factor
devices, API tokens and retention. Views, the API and Celery tasks call these and nothing else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from recognition.accounts.models import AccountEvent, Profile, Retention

logger = logging.getLogger("privacy.services")  # the name the logs have always shown

# What a person agrees to at sign-up; bump when the sign-up text changes meaningfully.
CONSENT_VERSION = "2026-12"


# --- the account log -------------------------------------------------------------------------


def client_ip(request: Any) -> str | None:
    return (getattr(request, "META", {}) or {}).get("REMOTE_ADDR") or None


def record(user: Any, kind: str, *, request: Any = None, detail: str = "", count: int = 1) -> AccountEvent | None:
    """Add an entry to the person's account log (never fails the action it describes)."""
    if user is None or not getattr(user, "pk", None):
        return None
    try:
        agent = ""
        if request is not None:
            agent = str(request.META.get("HTTP_USER_AGENT", ""))[:200]
        return AccountEvent.objects.create(
            user_id=user.pk, kind=kind, ip=client_ip(request), user_agent=agent, detail=detail[:200], count=count
        )
    except Exception:  # pragma: no cover - a log entry is never worth a failed request
        logger.warning("could not record %s for user %s", kind, user.pk, exc_info=True)
        return None


def prune_events(*, now: datetime | None = None) -> int:
    """Forget log entries older than ACCOUNT_EVENT_DAYS (sign-in addresses are personal data)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.ACCOUNT_EVENT_DAYS)
    deleted, _ = AccountEvent.objects.filter(created__lt=cutoff).delete()
    return deleted


# --- profile, consent, e-mail ------------------------------------------------------------------


def profile_for(user: Any) -> Profile:
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def start_account(*, user: Any, consented: bool, request: Any = None) -> Profile:
    """A new self-service account: record consent and, when REQUIRE_EMAIL_VERIFICATION is on,
    hold uploads until the e-mail address is verified (the link is sent here)."""
    profile = profile_for(user)
    if consented:
        profile.consent_at = timezone.now()
        profile.consent_version = CONSENT_VERSION
    profile.email_verification_required = bool(settings.REQUIRE_EMAIL_VERIFICATION)
    profile.save()
    if profile.email_verification_required:
        send_verification(user=user, request=request)
    return profile


def may_upload(user: Any) -> bool:
    """False only for a sign-up whose e-mail address is not verified yet."""
    if not settings.REQUIRE_EMAIL_VERIFICATION or not getattr(user, "is_authenticated", False):
        return True
    return not Profile.objects.filter(user_id=user.pk, email_verification_required=True).exists()


UNVERIFIED_MESSAGE = (
    "Please verify your e-mail address before uploading: open the link we sent you "
    "(or send a new one from your account page)."
)
VERIFY_SALT = "privacy.verify-email"


def verification_token(user: Any) -> str:
    return signing.dumps({"u": user.pk, "e": user.email}, salt=VERIFY_SALT, compress=True)


def send_verification(*, user: Any, request: Any = None) -> bool:
    """E-mail the verification link (console on the embedded default); False without an address."""
    if not user.email:
        return False
    path = reverse("verify-email", args=[verification_token(user)])
    link = request.build_absolute_uri(path) if request is not None else path
    days = settings.EMAIL_VERIFICATION_DAYS
    send_mail(
        "Verify your emotionsite e-mail address",
        f"Hello {user.get_username()},\n\nopen this link to verify your e-mail address and start "
        f"uploading:\n\n{link}\n\nThe link works for {days} days. If you did not sign up, ignore "
        "this message.\n",
        None,
        [user.email],
    )
    return True


class VerificationFailed(Exception):
    pass


def verify_email(*, token: str, request: Any = None) -> Any:
    """Mark the address in a valid link verified; returns the user. Raises VerificationFailed
    for a damaged, expired or outdated link (the address changed since)."""
    try:
        data = signing.loads(
            token, salt=VERIFY_SALT, max_age=timedelta(days=settings.EMAIL_VERIFICATION_DAYS)
        )
    except signing.SignatureExpired:
        raise VerificationFailed("This link has expired. Send a new one from your account page.") from None
    except signing.BadSignature:
        raise VerificationFailed("This link is not valid.") from None
    user = get_user_model().objects.filter(pk=data.get("u")).first() if isinstance(data, dict) else None
    if user is None or not user.email or user.email != data.get("e"):
        raise VerificationFailed("This link is not valid.")
    profile = profile_for(user)
    if profile.email_verification_required or profile.email_verified_at is None:
        profile.email_verification_required = False
        profile.email_verified_at = timezone.now()
        profile.save(update_fields=["email_verification_required", "email_verified_at", "updated"])
        record(user, AccountEvent.Kind.EMAIL_VERIFIED, request=request)
    return user


# --- two-factor sign-in (django-otp: TOTP + static recovery codes) ---------------------------

RECOVERY_CODES = 10


def confirmed_totp(user: Any):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def has_two_factor(user: Any) -> bool:
    from django_otp import user_has_device

    return bool(getattr(user, "pk", None)) and user_has_device(user, confirmed=True)


def start_totp(user: Any):
    """The pending (unconfirmed) authenticator of a set-up in progress, made once per set-up."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def qr_svg(device) -> str:
    """The device's otpauth:// URL as an inline SVG QR code (no image request, no script)."""
    import io

    import qrcode
    import qrcode.image.svg

    out = io.BytesIO()
    qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).save(out)
    svg = out.getvalue().decode()
    return svg[svg.index("<svg") :]


def base32_key(device) -> str:
    from base64 import b32encode

    return b32encode(device.bin_key).decode()


def _clean(code: str) -> str:
    return "".join(str(code or "").split()).replace("-", "")[:64]


def new_recovery_codes(user: Any, *, request: Any = None, announce: bool = True) -> list[str]:
    """Replace the person's recovery codes with RECOVERY_CODES new single-use ones."""
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

    device, _ = StaticDevice.objects.get_or_create(user=user, name="Recovery codes", defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    if announce:
        record(user, AccountEvent.Kind.RECOVERY_NEW, request=request)
    return codes


def confirm_totp(*, user: Any, code: str, request: Any = None):
    """Turn two-factor on with the first code from the app; returns (device, recovery codes) or
    None for a wrong code. The API token made without a second factor is revoked."""
    device = start_totp(user)
    if not device.verify_token(_clean(code)):
        return None
    with transaction.atomic():
        device.confirmed = True
        device.save()
        codes = new_recovery_codes(user, announce=False)
        revoke_token(user=user, request=request, reason="two-factor turned on")
        record(user, AccountEvent.Kind.TWO_FACTOR_ON, request=request)
    return device, codes


def disable_two_factor(*, user: Any, request: Any = None) -> None:
    from django_otp import devices_for_user

    for device in list(devices_for_user(user, confirmed=None)):
        device.delete()
    record(user, AccountEvent.Kind.TWO_FACTOR_OFF, request=request)


def verify_second_factor(*, user: Any, code: str, request: Any = None):
    """The device that accepts ``code`` (an authenticator code or an unused recovery code), or
    None. Devices throttle repeated failures themselves (django-otp)."""
    from django_otp import match_token
    from django_otp.plugins.otp_static.models import StaticDevice

    code = _clean(code)
    if not code:
        return None
    device = match_token(user, code)
    if isinstance(device, StaticDevice):
        left = device.token_set.count()
        record(user, AccountEvent.Kind.RECOVERY_USED, request=request, detail=f"{left} left")
    return device


# --- API tokens --------------------------------------------------------------------------------


class SecondFactorRequired(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def issue_token(*, user: Any, otp: str = "", request: Any = None, verified: bool = False):
    """The person's API token (made once, the same until revoked). An account with two-factor
    sign-in gets one only with a valid second factor: ``otp`` (API) or a session that passed it
    (``verified``, the account page)."""
    from rest_framework.authtoken.models import Token

    if has_two_factor(user) and not verified:
        if not otp:
            raise SecondFactorRequired(
                "This account uses two-factor sign-in: send `otp`, a code from the authenticator app "
                "or a recovery code.",
                "otp_required",
            )
        if verify_second_factor(user=user, code=otp, request=request) is None:
            raise SecondFactorRequired("The two-factor code is wrong or was already used.", "otp_invalid")
    token, created = Token.objects.get_or_create(user=user)
    if created:
        record(user, AccountEvent.Kind.TOKEN_CREATED, request=request)
    return token


def revoke_token(*, user: Any, request: Any = None, reason: str = "") -> bool:
    from rest_framework.authtoken.models import Token

    deleted, _ = Token.objects.filter(user=user).delete()
    if deleted:
        record(user, AccountEvent.Kind.TOKEN_REVOKED, request=request, detail=reason)
    return bool(deleted)


# --- retention ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    mode: str  # keep, media or all
    days: int
    from_site: bool

    def expires(self, created: datetime) -> datetime | None:
        return None if self.mode == Retention.KEEP else created + timedelta(days=self.days)


def site_policy() -> Policy:
    mode = settings.RETENTION_DEFAULT
    return Policy(mode if mode in ("keep", "media", "all") else "keep", int(settings.RETENTION_DAYS), True)


def policy_for(user: Any) -> Policy:
    profile = Profile.objects.filter(user_id=getattr(user, "pk", None)).first()
    if profile is None or profile.retention == Retention.DEFAULT:
        return site_policy()
    return Policy(profile.retention, profile.retention_days, False)


def set_retention(*, user: Any, mode: str, days: int, request: Any = None) -> Profile:
    profile = profile_for(user)
    if (profile.retention, profile.retention_days) != (mode, days):
        profile.retention, profile.retention_days = mode, days
        profile.save(update_fields=["retention", "retention_days", "updated"])
        record(user, AccountEvent.Kind.RETENTION_CHANGED, request=request, detail=Retention(mode).label[:200])
    return profile
