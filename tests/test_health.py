"""Liveness (/healthz) and readiness (/readyz) against the real PostgreSQL, a real Redis (a private
``redis-server`` on its own port for the outage, never the machine's shared one) and the served
models."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from django.test import Client

from recognition.inference import registry
from recognition.operations import health
from tests.test_channels_redis import production_layer_config
from tests.test_faults import RedisServer, redis_server, wait_until  # noqa: F401 - fixture

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

CHECKS = {"database", "redis", "channel_layer", "model_face", "model_voice", "media"}


@pytest.fixture(scope="module")
def served_models() -> None:
    """The served models loaded, as a started web process has them (warm-up)."""
    for task in health.MODEL_TASKS:
        registry.get_model(task=task)


def get_json(path: str) -> tuple[int, dict]:
    response = Client().get(path)
    assert response["Content-Type"] == "application/json"
    return response.status_code, json.loads(response.content)


def assert_shape(answer: dict) -> None:
    assert set(answer) == {"status", "checks"}
    assert answer["status"] in ("ready", "not ready")
    assert set(answer["checks"]) == CHECKS
    for name, check in answer["checks"].items():
        assert set(check) == {"ok", "ms", "detail"}, name
        assert isinstance(check["ok"], bool) and isinstance(check["ms"], float), name
        assert isinstance(check["detail"], str) and 0 < len(check["detail"]) <= 80, name
    assert (answer["status"] == "ready") == all(
        c["ok"] for c in answer["checks"].values()
    )


@pytest.fixture
def on_redis(redis_server, settings):  # noqa: F811 - fixture
    """REDIS_URL and the production channel layer on the private Redis (a prefix of its own)."""
    layers = production_layer_config(redis_server.url)
    layers["default"]["CONFIG"]["prefix"] = f"test-ready-{uuid.uuid4().hex[:8]}"
    settings.REDIS_URL = redis_server.url
    settings.CHANNEL_LAYERS = layers
    return redis_server


# --- liveness -------------------------------------------------------------------------------------


def test_healthz_answers_without_touching_anything(django_assert_num_queries, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: not consulted
    client = Client()
    with django_assert_num_queries(0):
        responses = [client.get("/healthz") for _ in range(50)]  # not rate limited
    for response in responses:
        assert response.status_code == 200
        assert json.loads(response.content) == {"status": "ok"}
        assert not response.cookies  # no session, no CSRF cookie
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "no-cache" in response["Cache-Control"]
    assert client.post("/healthz").status_code == 405


# --- readiness ------------------------------------------------------------------------------------


def test_readyz_is_ready_on_the_test_setup(served_models, settings):
    """Embedded Redis default: database, in-memory layer, both models and media all answer."""
    settings.REDIS_URL = ""
    start = time.perf_counter()
    status, answer = get_json("/readyz")
    elapsed = time.perf_counter() - start
    assert status == 200, answer
    assert_shape(answer)
    assert answer["status"] == "ready"
    checks = answer["checks"]
    assert checks["redis"]["detail"] == "skipped: embedded"
    assert checks["channel_layer"]["detail"] == "InMemoryChannelLayer"
    for task in health.MODEL_TASKS:
        model = registry.get_model(task=task)
        assert checks[f"model_{task}"]["detail"] == f"{model.name} {model.version} (onnx)"
    assert checks["media"]["detail"] == "writable"
    assert not list(settings.MEDIA_ROOT.glob(".readiness-*"))  # the probe file is gone
    assert elapsed < 2, f"readiness took {elapsed:.2f} s with everything loaded"
    print(f"\nreadiness (embedded, models loaded): {elapsed * 1000:.0f} ms; {checks}")


def test_readyz_waits_for_the_warm_up_calls(served_models, settings, monkeypatch):
    """A process that warms its models at start is not ready until every served model has
    answered its warm-up calls, then is."""
    from recognition.operations import warmup

    settings.REDIS_URL = ""
    monkeypatch.setattr(warmup, "_done", None)
    monkeypatch.setattr(warmup, "_started", threading.Event())
    warmup._started.set()  # started, not finished: what a web server is in its first second
    status, answer = get_json("/readyz")
    assert status == 503, answer
    assert answer["checks"]["model_face"] == {**answer["checks"]["model_face"], "ok": False, "detail": "warming up"}
    timings = warmup.warm_up_models()
    assert set(timings) == {"face_ms", "voice_ms"}
    status, answer = get_json("/readyz")
    assert status == 200, answer


def test_readyz_fails_while_redis_is_down_and_recovers(on_redis, served_models):
    status, answer = get_json("/readyz")
    assert status == 200, answer
    assert answer["checks"]["redis"] == {
        **answer["checks"]["redis"],
        "ok": True,
        "detail": "pong",
    }
    assert answer["checks"]["channel_layer"]["detail"] == "RedisChannelLayer"

    stopped = time.perf_counter()
    on_redis.stop()
    start = time.perf_counter()
    status, answer = get_json("/readyz")
    down_ms = (time.perf_counter() - start) * 1000
    assert status == 503
    assert_shape(answer)
    assert answer["status"] == "not ready"
    failing = {name for name, check in answer["checks"].items() if not check["ok"]}
    assert failing == {"redis", "channel_layer"}, answer
    assert answer["checks"]["redis"]["detail"].startswith("error: ")
    assert down_ms < 2 * 1000 * (health.REDIS_TIMEOUT + health.CHANNEL_TIMEOUT)

    on_redis.start()
    restarted = time.perf_counter()
    wait_until(
        "readiness after the Redis restart",
        lambda: Client().get("/readyz").status_code == 200,
        30,
    )
    recovered = time.perf_counter()
    status, answer = get_json("/readyz")
    assert status == 200 and answer["status"] == "ready", answer
    print(
        f"\nRedis down: 503 in {down_ms:.0f} ms ({(start - stopped) * 1000:.0f} ms after the stop);"
        f" ready again {recovered - restarted:.2f} s after the restart"
    )


def test_a_model_still_loading_reads_not_ready_and_then_ready(settings, monkeypatch):
    settings.REDIS_URL = ""
    registry.clear_cache()
    monkeypatch.setattr(
        health, "MODEL_WAIT", 0.01
    )  # a cold load takes far longer than 10 ms
    status, answer = get_json("/readyz")
    assert status == 503
    assert answer["checks"]["model_face"] == {
        **answer["checks"]["model_face"],
        "ok": False,
        "detail": "loading",
    }
    assert (
        answer["checks"]["model_face"]["ms"] < 500
    )  # the probe did not wait for the load
    wait_until(
        "the models to finish loading",
        lambda: Client().get("/readyz").status_code == 200,
        120,
    )


def test_the_answer_shows_no_secrets_hosts_or_paths(settings, tmp_path, served_models):
    """Every check failing with values that must not leak: a Redis password and host, a models
    folder and a media root that are not usable."""
    secret = "s3cret-" + uuid.uuid4().hex
    settings.REDIS_URL = f"redis://:{secret}@127.0.0.1:1/0"
    settings.MODELS_DIR = tmp_path / "no-models-here"
    media_file = tmp_path / "media-is-a-file"
    media_file.write_text("x")
    settings.MEDIA_ROOT = media_file
    settings.CHANNEL_LAYERS = production_layer_config(settings.REDIS_URL)
    # Each model check's first probe starts a load; the failure is seen within MODEL_WAIT.
    status, answer = get_json("/readyz")
    assert status == 503
    assert_shape(answer)
    failing = {name for name, check in answer["checks"].items() if not check["ok"]}
    assert failing == CHECKS - {"database"}, answer
    body = json.dumps(answer)
    for leak in (secret, "127.0.0.1", str(tmp_path), "no-models-here", "media-is-a-file",
                 settings.DATABASES["default"].get("PASSWORD") or secret):  # fmt: skip
        assert leak not in body
    assert "/" not in body and "\\" not in body, body  # no path, no URL at all
    assert "redis://" not in body
