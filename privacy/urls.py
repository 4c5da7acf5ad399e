"""Routes of the privacy features (included at the site root by emotionsite/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("account/", views.account, name="account"),
    path("account/retention/", views.account_retention, name="account-retention"),
    path("account/token/", views.account_token, name="account-token"),
    path("account/token/revoke/", views.account_token_revoke, name="account-token-revoke"),
    path("account/verify-email/", views.resend_verification, name="resend-verification"),
    path("accounts/verify-email/<str:token>/", views.verify_email, name="verify-email"),
    path("accounts/login/verify/", views.login_verify, name="login-verify"),
    path("accounts/two-factor/", views.two_factor, name="two-factor"),
    path("accounts/two-factor/setup/", views.two_factor_setup, name="two-factor-setup"),
    path("accounts/two-factor/verify/", views.two_factor_verify, name="two-factor-verify"),
    path("accounts/two-factor/recovery/", views.two_factor_recovery, name="two-factor-recovery"),
    path("accounts/two-factor/disable/", views.two_factor_disable, name="two-factor-disable"),
]
