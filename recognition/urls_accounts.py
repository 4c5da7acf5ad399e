"""Accounts under /accounts/: sign-up, log-in (Django's, with failed attempts rate-limited), plus
Django's auth views (logout, password change and reset) with the templates in
templates/registration/. Logout accepts POST only."""

from django.urls import include, path

from .views import accounts

urlpatterns = [
    path("signup/", accounts.signup, name="signup"),
    path("login/", accounts.RateLimitedLoginView.as_view(), name="login"),
    path("logout/", accounts.SiteLogoutView.as_view(), name="logout"),
    # password_change(/done), password_reset(/done), reset/<uidb64>/<token>/, reset/done/
    path("", include("django.contrib.auth.urls")),
]
