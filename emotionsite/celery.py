"""Celery application. Broker/backend come from settings (REDIS_URL); with no REDIS_URL the
embedded default runs tasks eagerly in-process (CELERY_TASK_ALWAYS_EAGER)."""

import os
import tempfile

from celery import Celery
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emotionsite.settings")
# A worker serving its own metrics (WORKER_METRICS_PORT) needs multi-process mode: the prefork
# children run the tasks. prometheus_client reads the folder when it is first imported: here,
# before anything imports it.
if os.environ.get("WORKER_METRICS_PORT") and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="emotionsite-metrics-")

app = Celery("emotionsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _warm_up_pool_process(**kwargs):
    """Each prefork child loads and warms the served models before it takes a task."""
    from recognition.operations.warmup import on_worker_process_init

    on_worker_process_init(**kwargs)


@worker_ready.connect
def _warm_up_worker(sender=None, **kwargs):
    """Solo and thread pools run tasks in the worker's own process: warm it there."""
    from recognition.operations.warmup import on_worker_ready

    on_worker_ready(sender=sender, **kwargs)


# --- Observability (recognition/observability.py): request ids into tasks, task metrics --------


@before_task_publish.connect
def _request_id_into_headers(**kwargs):
    from recognition.operations.observability import on_before_task_publish

    on_before_task_publish(**kwargs)


@task_prerun.connect
def _task_started(**kwargs):
    from recognition.operations.observability import on_task_prerun

    on_task_prerun(**kwargs)


@task_postrun.connect
def _task_finished(**kwargs):
    from recognition.operations.observability import on_task_postrun

    on_task_postrun(**kwargs)


@task_retry.connect
def _task_retried(**kwargs):
    from recognition.operations.observability import on_task_retry

    on_task_retry(**kwargs)


@task_failure.connect
def _task_failed(**kwargs):
    from recognition.operations.observability import on_task_failure

    on_task_failure(**kwargs)


@worker_process_shutdown.connect
def _pool_process_ends(**kwargs):
    from recognition.operations.observability import on_worker_process_shutdown

    on_worker_process_shutdown(**kwargs)


@worker_ready.connect
def _worker_metrics_endpoint(**kwargs):
    from recognition.operations.observability import start_worker_endpoint

    start_worker_endpoint()


if os.environ.get("LOG_FORMAT", "text") == "json":

    @setup_logging.connect
    def _json_logs(**kwargs):
        """LOG_FORMAT=json: the worker logs through settings.LOGGING (JSON lines) instead of
        Celery's own text format; text mode keeps Celery's format."""
        from logging.config import dictConfig

        from django.conf import settings

        dictConfig(settings.LOGGING)
