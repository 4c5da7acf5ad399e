"""Every successful sign-in (pages, admin, second step of two-factor) goes into the account log."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from recognition.accounts import services
from recognition.accounts.models import AccountEvent


@receiver(user_logged_in, dispatch_uid="privacy-sign-in-log")
def _log_sign_in(sender, request, user, **kwargs):
    if request is None or getattr(request, "_privacy_forced", False):
        return
    detail = "with two-factor" if getattr(user, "otp_device", None) is not None else ""
    services.record(user, AccountEvent.Kind.SIGN_IN, request=request, detail=detail)
