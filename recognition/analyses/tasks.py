"""Celery tasks: thin wrappers around services (ids in, no model instances)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from recognition.analyses import retention, services
from recognition.analyses.models import Analysis

logger = logging.getLogger("recognition.tasks")  # the name the logs have always shown

TRANSIENT = (OperationalError, InterfaceError, ConnectionError)


@shared_task(
    name="recognition.tasks.analyse",  # the name queued messages and metrics carry
    bind=True,
    # The outcome is in the database; nobody reads a Celery result. Without this, sending the
    # task also subscribed to its result in Redis, and during a Redis outage that subscription
    # retried for 20 s (then "the Celery application must be restarted"), holding the upload
    # request that long (benchmarks/bench_cluster.py --redis-down 10: uploads hung 10.8 s).
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def analyse(self, analysis_id: int) -> str | None:
    """Run one analysis. Re-delivery is safe (``run_analysis`` is idempotent); transient
    database/connection errors retry with backoff, and the last failure is stored for people."""
    try:
        return services.run_analysis(analysis_id=analysis_id).status
    except Analysis.DoesNotExist:
        logger.info("analysis %s no longer exists; nothing to do", analysis_id)
        return None
    except SoftTimeLimitExceeded:
        services.mark_failed(
            analysis_id=analysis_id,
            message="The analysis took too long and was stopped.",
        )
        return Analysis.Status.FAILED
    except TRANSIENT:
        if self.request.retries >= self.max_retries:
            try:
                services.mark_failed(
                    analysis_id=analysis_id,
                    message="The analysis could not be completed because a service was unavailable.",
                )
            except TRANSIENT:
                logger.exception("could not record failure of analysis %s", analysis_id)
        raise


@shared_task(name="recognition.tasks.requeue_lost", ignore_result=True)
def requeue_lost() -> int:
    """Periodic (Celery beat, settings.CELERY_BEAT_SCHEDULE): re-send analyses whose broker
    message was lost, so no upload stays queued forever after a Redis restart or outage."""
    return len(services.requeue_lost())


@shared_task(name="privacy.tasks.purge_expired", ignore_result=False)
def purge_expired() -> dict[str, int]:
    """Periodic (Celery beat, settings.CELERY_BEAT_SCHEDULE "retention"): delete the stored files,
    or whole analyses, older than each account's retention; forget account-log entries older than
    ACCOUNT_EVENT_DAYS. Returns the counts ({"media", "all", "events"})."""
    return retention.purge_expired()
