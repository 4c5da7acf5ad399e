from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """Sign-in security (two-factor, verified e-mail), retention, consent and the account log."""

    name = "privacy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin
        from django_otp.admin import OTPAdminSite

        from . import signals  # noqa: F401 - connects the sign-in log

        # The admin only for sessions that passed a second factor (staff must have one).
        admin.site.__class__ = OTPAdminSite
