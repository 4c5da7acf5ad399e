"""recognition/warmup.py: the served models are loaded and warmed when a worker process or the
web server starts, so the first job is not the slow one; tests and other commands skip it."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.concurrency.solo import TaskPool as SoloPool

from recognition.analyses import services, tasks
from recognition.inference import registry
from recognition.live import pipeline
from recognition.operations import warmup
from tests.test_tasks_worker import (  # noqa: F401 - fixtures
    celery_on_redis,
    wait_for,
    worker,
)


@pytest.mark.parametrize(
    ("argv", "env", "serving"),
    [
        (
            ["/srv/.venv/bin/daphne", "-p", "8000", "emotionsite.asgi:application"],
            {},
            True,
        ),
        (
            [
                "/srv/.venv/lib/python3.11/site-packages/daphne/__main__.py",
                "-p",
                "8000",
            ],
            {},
            True,
        ),
        (["/srv/.venv/bin/uvicorn", "emotionsite.asgi:application"], {}, True),
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}, True),  # the serving child
        (["manage.py", "runserver"], {}, False),  # the autoreloader's parent
        (["manage.py", "runserver", "--noreload"], {}, True),
        (["manage.py", "migrate"], {}, False),
        (["/srv/.venv/bin/celery", "-A", "emotionsite", "worker"], {}, False),
        (["/srv/.venv/bin/pytest", "tests"], {}, False),
        ([], {}, False),
    ],
)
def test_only_web_servers_warm_up_at_start(monkeypatch, argv, env, serving):
    monkeypatch.delenv("RUN_MAIN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert warmup.serving_web(argv) is serving


def test_warm_up_loads_the_served_models_and_a_live_thread(monkeypatch):
    registry.clear_cache()
    monkeypatch.setattr(warmup, "_done", None)
    thread = warmup.warm_up_in_background()
    thread.join(300)
    assert not thread.is_alive()
    timings = warmup._done
    assert set(timings) == {"face_ms", "voice_ms"} and min(timings.values()) > 0
    cached = {name for _, name in registry._cache}
    assert {registry.served_name("face"), registry.served_name("voice")} <= cached
    assert pipeline._warmed.wait(120)  # one live pool thread has its detector too
    assert warmup.warm_up_models() is timings  # once per process


def test_switched_off_nothing_is_warmed(settings):
    settings.WARM_UP_MODELS = False
    assert warmup.warm_up_in_background() is None


def test_worker_ready_warms_only_pools_that_run_tasks_in_the_worker(monkeypatch):
    calls = []
    monkeypatch.setattr(warmup, "warm_up_models", lambda: calls.append(1))
    prefork = SimpleNamespace(controller=SimpleNamespace(pool_cls=PreforkPool))
    warmup.on_worker_ready(sender=prefork)
    assert calls == []  # its children warm themselves (worker_process_init)
    solo = SimpleNamespace(controller=SimpleNamespace(pool_cls=SoloPool))
    warmup.on_worker_ready(sender=solo)
    assert calls == [1]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_warms_up_before_its_first_job(
    worker,  # noqa: F811
    user,
    face_photo,
    tmp_path,
):
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    tasks.analyse.delay(analysis.pk)
    done = wait_for(analysis.pk, worker)
    assert done.status == "done", done.error
    log = (tmp_path / "worker.log").read_text(errors="replace")
    warmed = re.search(
        r"ForkPoolWorker-\d+\] models warmed up: \{'face_ms': ([\d.]+)", log
    )
    assert warmed, log[-3000:]
    # The pool process loaded and warmed the models before it took the job (the log says so
    # before the task's own lines), so the first job did not pay for it. How long each takes is
    # for benchmarks/bench_serving.py to measure, not for this test.
    started = re.search(r"ForkPoolWorker-\d+\] task recognition\.tasks\.analyse\[[^\]]+\] started", log)
    assert started, log[-3000:]
    assert warmed.start() < started.start(), log[-3000:]
    print(f"warm-up {warmed[0]}; first job {done.timings}")
