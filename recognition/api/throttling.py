"""Per-user and per-client throttles for the API.

Rates come from ``settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (scopes ``user``, ``anon``,
``uploads``, ``token``; each overridable from the environment, e.g. ``API_THROTTLE_TOKEN``).
DRF's own classes read the rates once at import; these read them on every request, so a change
of settings (or ``override_settings`` in a test) takes effect at once.
"""

from __future__ import annotations

from rest_framework import throttling
from rest_framework.settings import api_settings


class _LiveRatesMixin:
    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserThrottle(_LiveRatesMixin, throttling.UserRateThrottle):
    """Every API request of a signed-in user (by user id; by client IP when anonymous)."""


class AnonThrottle(_LiveRatesMixin, throttling.AnonRateThrottle):
    """Requests without credentials, by client IP."""


class UploadThrottle(_LiveRatesMixin, throttling.UserRateThrottle):
    """New analyses per user: each one costs a model run."""

    scope = "uploads"


class TokenCreateThrottle(_LiveRatesMixin, throttling.SimpleRateThrottle):
    """Token requests (password checks) per client IP, stricter than the rest, to slow guessing."""

    scope = "token"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }


DEFAULT_THROTTLES = (UserThrottle, AnonThrottle)
