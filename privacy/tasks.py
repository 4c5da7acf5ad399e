"""Celery tasks of the privacy features (thin: the work is in services)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(ignore_result=False)
def purge_expired() -> dict[str, int]:
    """Periodic (Celery beat, settings.CELERY_BEAT_SCHEDULE "retention"): delete the stored files,
    or whole analyses, older than each account's retention; forget account-log entries older than
    ACCOUNT_EVENT_DAYS. Returns the counts ({"media", "all", "events"})."""
    return services.purge_expired()
