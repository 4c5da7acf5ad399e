"""Accounts under /accounts/: sign-up, plus Django's auth views (login, logout, password change
and reset) with the templates in templates/registration/. Logout accepts POST only."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from .views import accounts

urlpatterns = [
    path("signup/", accounts.signup, name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", accounts.SiteLogoutView.as_view(), name="logout"),
    # password_change(/done), password_reset(/done), reset/<uidb64>/<token>/, reset/done/
    path("", include("django.contrib.auth.urls")),
]
