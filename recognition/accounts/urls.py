"""Routes of the accounts (included at the site root by emotionsite/urls.py): sign-up, log-in
(Django's, with failed attempts rate-limited), Django's auth views (logout, password change and
reset, templates in templates/registration/; logout accepts POST only), the account page,
two-factor sign-in and e-mail verification."""

from django.urls import include, path

from recognition.accounts import auth_views, views

urlpatterns = [
    path("accounts/signup/", auth_views.signup, name="signup"),
    path("accounts/login/", auth_views.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.SiteLogoutView.as_view(), name="logout"),
    # password_change(/done), password_reset(/done), reset/<uidb64>/<token>/, reset/done/
    path("accounts/", include("django.contrib.auth.urls")),
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
