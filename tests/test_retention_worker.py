"""Retention through a real Celery worker on Redis: the task that settings.CELERY_BEAT_SCHEDULE
runs ("retention") deletes the files of a backdated analysis and keeps its results; the media
folder is walked before and after. Worker fixtures from tests/test_tasks_worker.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from emotionsite.celery import app
from recognition.accounts.models import AccountEvent, RemovedMedia
from recognition.analyses import services
from recognition.analyses.models import Analysis
from tests.bad_inputs import face_jpeg
from tests.test_tasks_worker import celery_on_redis, worker  # noqa: F401 - fixtures

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def cold_worker(monkeypatch, request):
    """The worker without the model warm-up: this task loads no model."""
    monkeypatch.setenv("WARM_UP_MODELS", "False")
    monkeypatch.setenv("RETENTION_DEFAULT", "media")
    monkeypatch.setenv("RETENTION_DAYS", "30")
    return request.getfixturevalue("worker")


def files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


def test_beat_retention_task_deletes_old_files_and_keeps_results(cold_worker, user, settings):
    old = services.create_analysis(owner=user, upload=face_jpeg(), enqueue=False)
    new = services.create_analysis(owner=user, upload=face_jpeg(), enqueue=False)
    Analysis.objects.filter(pk__in=[old.pk, new.pk]).update(
        status="done", emotion="happy", confidence=0.9, result={"faces": [{"emotion": "happy"}]}
    )
    Analysis.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=31))
    before = files_under(settings.MEDIA_ROOT)
    assert [n for n in before if old.uid.hex in n] and [n for n in before if new.uid.hex in n]

    entry = django_settings.CELERY_BEAT_SCHEDULE["retention"]
    result = app.send_task(entry["task"], queue=app.conf.task_default_queue)
    totals = result.get(timeout=120)

    assert totals["media"] == 1
    after = files_under(settings.MEDIA_ROOT)
    assert not [n for n in after if old.uid.hex in n], after
    assert [n for n in after if new.uid.hex in n]
    old.refresh_from_db()
    assert not old.media and old.status == "done" and old.emotion == "happy" and old.result["faces"]
    assert RemovedMedia.objects.filter(analysis=old).exists()
    assert AccountEvent.objects.filter(user=user, kind="expired_media", count=1).exists()
