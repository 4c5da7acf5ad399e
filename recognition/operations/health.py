"""Liveness and readiness: what a load balancer or orchestrator asks before sending traffic.

``readiness()`` runs one short check per dependency and answers ``{name: {ok, ms, detail}}``.
Details are short fixed words or exception class names, never URLs, hosts or paths (exception
messages carry those, so they are not shown). Each check has its own time bound, so a dead
dependency makes the answer "not ready" within a few seconds instead of hanging the probe.

Models: loading one takes seconds the first time, so the check never blocks on it. It asks the
registry for the served model in a background thread and waits at most ``MODEL_WAIT`` seconds:
a model already loaded (the usual case, warmed up at start) answers at once; one still loading
reads ``loading`` (not ready) and the next probe sees it finished.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from threading import Lock
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection

from recognition.inference import registry

MODEL_TASKS = ("face", "voice")
MODEL_WAIT = 1.0  # seconds a probe waits for a model before answering "loading"
REDIS_TIMEOUT = 2.0
CHANNEL_TIMEOUT = 2.0

_loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness-model")
_loads: dict[str, Future] = {}
_loads_lock = Lock()


class NotReady(Exception):
    """A check's own verdict (as opposed to an error raised by the dependency)."""


def liveness() -> dict[str, str]:
    """The process answers: touches no dependency."""
    return {"status": "ok"}


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            raise NotReady("unexpected answer")
    return "ok"


def check_redis() -> str:
    """Broker, result backend, cache and channel layer all live in REDIS_URL's Redis."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return "skipped: embedded"
    import redis

    client = redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
    )
    try:
        if client.ping() is not True:
            raise NotReady("no PONG")
    finally:
        client.close()
    return "pong"


def check_channel_layer() -> str:
    """A message sent to a fresh private channel comes back within CHANNEL_TIMEOUT."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        raise NotReady("no channel layer configured")

    async def round_trip() -> bool:
        channel = await layer.new_channel(prefix="readiness")
        sent = {"type": "readiness.ping", "nonce": os.urandom(8).hex()}
        await layer.send(channel, sent)
        received = await layer.receive(channel)
        return received.get("nonce") == sent["nonce"]

    async def bounded() -> bool:
        return await asyncio.wait_for(round_trip(), timeout=CHANNEL_TIMEOUT)

    try:
        if not async_to_sync(bounded)():
            raise NotReady("wrong message came back")
    except TimeoutError:
        raise NotReady(f"no answer within {CHANNEL_TIMEOUT:.0f} s") from None
    return type(layer).__name__


def _model_load(task: str) -> Future:
    """The in-flight (or just finished) registry lookup for ``task``; a new one once the last has
    finished, so a cleared cache or a fixed model file is noticed by the next probe."""
    with _loads_lock:
        future = _loads.get(task)
        if future is None or future.done():
            future = _loader.submit(registry.get_model, task=task)
            _loads[task] = future
        return future


def check_model(task: str) -> str:
    """The served model of ``task`` is loaded, and, in a process that warms its models at start
    (web servers, workers: ``recognition.warmup``), has answered its warm-up calls."""
    from recognition.operations import warmup

    try:
        model = _model_load(task).result(timeout=MODEL_WAIT)
    except FutureTimeout:
        raise NotReady("loading") from None
    if warmup.warming():
        raise NotReady("warming up")
    return f"{model.name} {model.version} ({model.engine})"


STORAGE_TIMEOUT = 3.0  # seconds the probe waits for the object store
_storage_probe = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readiness-storage")


def _store_round_trip() -> None:
    """Write, read back and delete a small object in the bucket (storage API)."""
    import uuid

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    payload = uuid.uuid4().hex.encode()
    name = default_storage.save(f".readiness/{uuid.uuid4().hex}", ContentFile(payload))
    try:
        with default_storage.open(name, "rb") as fh:
            if fh.read() != payload:
                raise NotReady("read back differs")
    finally:
        default_storage.delete(name)


def check_media() -> str:
    """Uploads can be stored. MEDIA_ROOT: a temporary file is created and removed there. The
    object store (MEDIA_STORAGE_URL): an object is written, read back and deleted within
    STORAGE_TIMEOUT seconds; a failure counts in the storage error metric."""
    from django.core.files.storage import default_storage

    if not hasattr(default_storage, "bucket_name"):
        root = settings.MEDIA_ROOT
        os.makedirs(root, exist_ok=True)  # as the storage would on the first upload
        with tempfile.NamedTemporaryFile(dir=root, prefix=".readiness-") as fh:
            fh.write(b"ok")
            fh.flush()
        return "writable"
    from recognition.operations import metrics

    try:
        _storage_probe.submit(_store_round_trip).result(timeout=STORAGE_TIMEOUT)
    except NotReady:
        metrics.count_storage_error("check")
        raise
    except FutureTimeout:
        metrics.count_storage_error("check")
        raise NotReady("object store: timeout") from None
    except Exception as exc:  # noqa: BLE001 - the class name only: messages hold URLs
        metrics.count_storage_error("check")
        raise NotReady(f"object store: {type(exc).__name__}") from None
    return "object store writable"


def checks() -> dict[str, Callable[[], str]]:
    named: dict[str, Callable[[], str]] = {
        "database": check_database,
        "redis": check_redis,
        "channel_layer": check_channel_layer,
    }
    for task in MODEL_TASKS:
        named[f"model_{task}"] = lambda task=task: check_model(task)
    named["media"] = check_media
    return named


def _run(check: Callable[[], str]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        ok, detail = True, check()
    except NotReady as exc:
        ok, detail = False, str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; messages may hold secrets
        ok, detail = False, f"error: {type(exc).__name__}"
    ms = round((time.perf_counter() - start) * 1000, 1)
    return {"ok": ok, "ms": ms, "detail": detail[:80]}


def readiness() -> dict[str, Any]:
    """``{"status": "ready" | "not ready", "checks": {name: {"ok", "ms", "detail"}}}``."""
    results = {name: _run(check) for name, check in checks().items()}
    ready = all(r["ok"] for r in results.values())
    return {"status": "ready" if ready else "not ready", "checks": results}
