"""Celery application. Broker/backend come from settings (REDIS_URL); with no REDIS_URL the
embedded default runs tasks eagerly in-process (CELERY_TASK_ALWAYS_EAGER)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emotionsite.settings")

app = Celery("emotionsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
