"""Reads for the account page and the history: always one person's own rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from recognition.accounts.models import AccountEvent, Profile


def recent_events(user: Any, kinds=None, *, days: int | None = None):
    since = timezone.now() - timedelta(days=days or settings.ACCOUNT_EVENT_DAYS)
    events = AccountEvent.objects.filter(user_id=user.pk, created__gte=since)
    if kinds is not None:
        events = events.filter(kind__in=list(kinds))
    return events.order_by("-created", "-id")


def account_overview(user: Any) -> dict[str, Any]:
    """Everything the account page lists: sign-ins, the API token, deletions (last 90 days)."""
    from rest_framework.authtoken.models import Token

    from recognition.accounts import services

    profile = Profile.objects.filter(user_id=user.pk).first()
    return {
        "profile": profile,
        "policy": services.policy_for(user),
        "site_policy": services.site_policy(),
        "two_factor": services.has_two_factor(user),
        "token": Token.objects.filter(user_id=user.pk).first(),
        "sign_ins": recent_events(user, [AccountEvent.Kind.SIGN_IN])[:100],
        "deletions": recent_events(user, AccountEvent.DELETIONS)[:100],
        "security": recent_events(
            user,
            [k for k in AccountEvent.Kind if k not in AccountEvent.DELETIONS and k != AccountEvent.Kind.SIGN_IN],
        )[:100],
        "days": settings.ACCOUNT_EVENT_DAYS,
        "email_pending": bool(profile and profile.email_verification_required),
    }
