from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Accounts: sign-up and log-in, sign-in security (two-factor, verified e-mail), retention,
    consent and the account log. The label stays ``privacy`` (the app's name before the split),
    so its tables, migrations, content types and permissions keep their names."""

    name = "recognition.accounts"
    label = "privacy"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin
        from django_otp.admin import OTPAdminSite

        from recognition.accounts import signals  # noqa: F401 - connects the sign-in log

        # The admin only for sessions that passed a second factor (staff must have one).
        admin.site.__class__ = OTPAdminSite
