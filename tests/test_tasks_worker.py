"""The analysis task through a real Celery worker on Redis (a subprocess), as in production.

The worker gets the pytest-django test database, this test's MEDIA_ROOT and TEST_REDIS_URL; this
process enqueues through Redis too (Celery re-configured for the test, restored after) on a
queue of its own, so parallel test runs and other users of the Redis database do not interfere.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from kombu import pools

from emotionsite.celery import app
from recognition.analyses import services, tasks
from recognition.analyses.models import Analysis
from recognition.inference.labels import FACE_EMOTIONS
from tests.conftest import redis_url

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def celery_on_redis(settings):
    """Enqueue through Redis on a private queue; returns the queue name. Restores Celery after."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker needs the PostgreSQL test database (./scripts/test)")
    queue = f"test-{uuid.uuid4().hex[:10]}"
    saved = {
        k: app.conf[k]
        for k in (
            "broker_url",
            "result_backend",
            "task_always_eager",
            "task_default_queue",
        )
    }
    app.conf.update(
        broker_url=redis_url(),
        result_backend=redis_url(),
        task_always_eager=False,
        task_default_queue=queue,
    )
    app._pool = None
    app.amqp._producer_pool = None
    forget_result_backend()  # the app caches its backend: one made earlier would not be Redis
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # As in settings: a read timeout longer than channels_redis's 5 s blocking pop.
            "CONFIG": {
                "hosts": [{"address": redis_url(), "socket_timeout": 15}],
                "prefix": queue,
            },
        }
    }
    yield queue
    app.conf.update(saved)
    pools.reset()  # closes the Redis connections and forgets them (next use starts afresh)
    app._pool = None
    app.amqp._producer_pool = None
    forget_result_backend()


def forget_result_backend() -> None:
    """Drop the result backend Celery cached (per app or per thread), so the next use builds
    one from the current ``result_backend`` setting."""
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


@pytest.fixture
def worker(celery_on_redis, settings, tmp_path):
    """A real ``celery worker`` (prefork, one process: time limits work) on the private queue."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url(),
        "CHANNELS_PREFIX": celery_on_redis,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DJANGO_SETTINGS_MODULE": "emotionsite.settings",
    }
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "emotionsite",
            "worker",
            "-P",
            "prefork",
            "-c",
            "1",
            "-Q",
            celery_on_redis,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "info",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    print((tmp_path / "worker.log").read_text(errors="replace")[-4000:])


def wait_for(
    analysis_id: int, proc: subprocess.Popen, timeout: float = 180
) -> Analysis:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        analysis = Analysis.objects.get(pk=analysis_id)
        if analysis.status in ("done", "failed"):
            return analysis
        assert proc.poll() is None, "the worker died"
        time.sleep(0.5)
    pytest.fail(f"analysis {analysis_id} still {analysis.status} after {timeout} s")


def test_upload_is_analysed_by_a_real_worker(worker, user, face_photo, celery_on_redis):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"user-{user.pk}", channel)

    analysis = services.create_analysis(
        owner=user, upload=face_photo, filename="face.jpg"
    )
    done = wait_for(analysis.pk, worker)
    assert done.status == "done", done.error
    assert done.face_count >= 1 and done.emotion in FACE_EMOTIONS
    assert done.attempts == 1 and done.models_used["face"]["name"]

    # The worker pushed the status changes through Redis to this user's group.
    async def pushed_statuses() -> list[str]:
        seen: list[str] = []
        while "done" not in seen:
            message = await asyncio.wait_for(layer.receive(channel), timeout=30)
            assert message["analysis"]["id"] == analysis.pk
            seen.append(message["analysis"]["status"])
        return seen

    assert async_to_sync(pushed_statuses)() == ["running", "done"]

    # Re-delivery of the same task (acks_late) does not run it again.
    tasks.analyse.delay(analysis.pk)
    time.sleep(3)
    again = Analysis.objects.get(pk=analysis.pk)
    assert (again.attempts, again.finished) == (1, done.finished)


def test_soft_time_limit_marks_the_analysis_failed(worker, user, face_photo):
    # The worker has warmed its models at start, so the limit must be below what a warm
    # analysis of the 2048x1536 photo takes (about 0.4 s here; its decoding alone 0.15 s).
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    tasks.analyse.apply_async((analysis.pk,), soft_time_limit=0.05, time_limit=30)
    failed = wait_for(analysis.pk, worker)
    assert failed.status == "failed"
    assert failed.error == "The analysis took too long and was stopped."
