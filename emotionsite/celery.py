"""Celery application. Broker/backend come from settings (REDIS_URL); with no REDIS_URL the
embedded default runs tasks eagerly in-process (CELERY_TASK_ALWAYS_EAGER)."""

import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emotionsite.settings")

app = Celery("emotionsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _warm_up_pool_process(**kwargs):
    """Each prefork child loads and warms the served models before it takes a task."""
    from recognition.warmup import on_worker_process_init

    on_worker_process_init(**kwargs)


@worker_ready.connect
def _warm_up_worker(sender=None, **kwargs):
    """Solo and thread pools run tasks in the worker's own process: warm it there."""
    from recognition.warmup import on_worker_ready

    on_worker_ready(sender=sender, **kwargs)
