"""Two-factor sign-in is required for staff: a staff account that has not passed a second
factor in this session is sent to set one up (or to enter a code) before any other page."""

from __future__ import annotations

from django.shortcuts import redirect
from django.urls import reverse

EXEMPT_PREFIXES = ("/accounts/two-factor/", "/accounts/logout/", "/static/", "/healthz", "/readyz")


class StaffTwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.is_staff
            and not (hasattr(user, "is_verified") and user.is_verified())
            and not request.path.startswith(EXEMPT_PREFIXES)
        ):
            return redirect(f"{reverse('two-factor')}?required=1")
        return self.get_response(request)
