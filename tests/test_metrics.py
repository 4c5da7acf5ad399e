"""Metrics (/metrics, a worker's endpoint), request ids and JSON logs (recognition/metrics.py,
recognition/observability.py, recognition/logs.py).

In-process tests use Django's test client and this process's registry; the ``services`` tests
run the real things: the site under daphne on the embedded default (scraped over HTTP after an
upload), and a real Celery worker on Redis in multi-process mode with its own metrics endpoint
and JSON logs.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from recognition.analyses import services, tasks
from recognition.analyses.models import Analysis
from recognition.operations import logs
from tests.conftest import MEDIA, redis_url
from tests.livesite import Site, wait_for_port
from tests.test_tasks_worker import celery_on_redis, database_url, wait_for  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "scrape-" + uuid.uuid4().hex


def value(name: str, **labels: str) -> float:
    """This process's current value of a sample (0 when it has never been recorded)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def json_log() -> io.StringIO:
    """Root logging also goes, as JSON lines with the request context, into the returned buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(old_level)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- who may scrape ---------------------------------------------------------------------------------


def test_metrics_are_refused_without_the_token_or_an_allowed_address(settings, db):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", []
    assert Client().get("/metrics").status_code == 403  # nothing configured: nobody

    settings.METRICS_TOKEN = TOKEN
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Token {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}):  # fmt: skip
        response = Client().get("/metrics", headers=headers)
        assert response.status_code == 403, headers
        assert TOKEN not in response.content.decode()
        assert json.loads(response.content)["error"]["code"] == "forbidden"
        assert "emotionsite_" not in response.content.decode()

    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "no-cache" in response["Cache-Control"] and not response.cookies
    assert "# TYPE emotionsite_http_requests_total counter" in response.content.decode()
    assert Client().post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405

    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "::1"]  # the test client is 127.0.0.1
    assert Client().get("/metrics").status_code == 403
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "127.0.0.0/8"]
    assert Client().get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="192.168.1.9").get("/metrics").status_code == 403


# --- HTTP metrics and request ids ---------------------------------------------------------------------


def test_requests_are_counted_by_url_pattern_not_path(alice_client):
    before = {
        "detail": value("emotionsite_http_requests_total", route="/analyses/<int:pk>/", method="GET", status="404"),
        "unmatched": value("emotionsite_http_requests_total", route="unmatched", method="GET", status="404"),
        "home": value("emotionsite_http_request_duration_seconds_count", route="/", method="GET"),
    }  # fmt: skip
    for pk in (999991, 999992, 999993):
        assert alice_client.get(f"/analyses/{pk}/").status_code == 404
    assert alice_client.get(f"/no-such-page-{uuid.uuid4().hex}").status_code == 404
    assert alice_client.get("/").status_code == 200
    assert value("emotionsite_http_requests_total", route="/analyses/<int:pk>/", method="GET", status="404") == before["detail"] + 3  # fmt: skip
    assert value("emotionsite_http_requests_total", route="unmatched", method="GET", status="404") == before["unmatched"] + 1  # fmt: skip
    assert value("emotionsite_http_request_duration_seconds_count", route="/", method="GET") == before["home"] + 1
    routes = {s.labels.get("route") for f in REGISTRY.collect() for s in f.samples if s.name.startswith("emotionsite_http")}
    assert not any("999991" in r or "no-such-page" in r for r in routes if r), routes


def test_every_response_carries_a_request_id(client, db):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert len(first["X-Request-ID"]) == 32 and first["X-Request-ID"] != second["X-Request-ID"]
    assert client.get("/healthz", headers={"X-Request-ID": "lb-1234abcd"})["X-Request-ID"] == "lb-1234abcd"
    odd = client.get("/healthz", headers={"X-Request-ID": "x\nInjected: yes"})["X-Request-ID"]
    assert odd != "x\nInjected: yes" and len(odd) == 32  # not a sane token: replaced


@pytest.mark.django_db(transaction=True)  # the upload's task is sent on commit
def test_json_logs_are_one_object_per_line_with_the_request_id_and_no_secrets(
    alice_client, user, face_photo, json_log, settings
):
    """An upload on the embedded default (the task runs eagerly inside the request): the request
    line, the service's and the task's lines all carry the request id; no token, password-reset
    path or query string reaches the log."""
    secret = uuid.uuid4().hex
    rid = "upload-" + uuid.uuid4().hex[:12]
    response = alice_client.post(
        f"/upload/?secret={secret}", {"file": SimpleUploadedFile("face.jpg", face_photo, "image/jpeg")}, headers={"X-Request-ID": rid}
    )
    assert response.status_code in (200, 302), response.status_code
    Client().get(f"/accounts/reset/MQ/{secret}/")  # a password-reset link: its token is in the path
    Client().get("/api/v1/analyses/", headers={"Authorization": f"Token {secret}"})
    logging.getLogger("test").error("boom\nsecond line", exc_info=ValueError("x"))

    text = json_log.getvalue()
    lines = json_lines(text)  # every line is one JSON object
    assert len(lines) == len(text.strip().splitlines()) >= 5
    assert secret not in text
    mine = [line for line in lines if line.get("request_id") == rid]
    messages = " | ".join(line["message"] for line in mine)
    assert any(line["logger"] == "recognition.request" and line["route"] == "/upload/" for line in mine), messages
    assert any(line["message"].startswith("analysis ") and "created" in line["message"] for line in mine), messages
    task_lines = [line for line in mine if line.get("task") == "recognition.tasks.analyse"]
    assert task_lines and all(line["task_id"] for line in task_lines), messages
    for line in lines:
        assert {"time", "level", "logger", "message", "process"} <= set(line)
    boom = next(line for line in lines if line["logger"] == "test")
    assert boom["message"] == "boom\nsecond line" and "ValueError" in boom["exc_info"]


# --- analyses, inference and task metrics in one process (embedded default) ---------------------------


@pytest.mark.django_db(transaction=True)
def test_an_eager_upload_counts_the_analysis_its_inference_and_its_task(user, face_photo):
    counts = lambda: {
        status: value("emotionsite_analyses_total", kind="image", status=status)
        for status in ("queued", "running", "done", "failed")
    }
    before = counts()
    task_before = value("emotionsite_celery_task_duration_seconds_count", task="recognition.tasks.analyse", state="SUCCESS")  # fmt: skip
    analysis = services.create_analysis(owner=user, upload=face_photo, filename="face.jpg")
    analysis.refresh_from_db()
    assert analysis.status == "done"
    model = analysis.models_used["face"]["name"]
    after = counts()
    assert {k: after[k] - before[k] for k in after} == {"queued": 1, "running": 1, "done": 1, "failed": 0}
    assert value("emotionsite_celery_task_duration_seconds_count", task="recognition.tasks.analyse", state="SUCCESS") == task_before + 1  # fmt: skip
    for stage in ("decode", "detect", "classify"):
        assert value("emotionsite_inference_seconds_count", model=model, stage=stage) >= 1, stage
    detect = value("emotionsite_inference_seconds_sum", model=model, stage="detect")
    assert 0 < detect < 600


@pytest.mark.django_db(transaction=True)
def test_retries_and_failures_are_counted(user, face_photo, monkeypatch):
    """A transient database error retries the task (eagerly here) and then it succeeds; an
    exception the task does not handle is a failure."""
    real = services.run_analysis
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("the database went away")
        return real(**kwargs)

    monkeypatch.setattr(services, "run_analysis", flaky)
    retries = value("emotionsite_celery_task_retries_total", task="recognition.tasks.analyse")
    failures = value("emotionsite_celery_task_failures_total", task="recognition.tasks.analyse")
    retried_runs = value("emotionsite_celery_task_duration_seconds_count", task="recognition.tasks.analyse", state="RETRY")  # fmt: skip
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    tasks.analyse.apply(args=(analysis.pk,))
    assert len(calls) == 2 and Analysis.objects.get(pk=analysis.pk).status == "done"
    assert value("emotionsite_celery_task_retries_total", task="recognition.tasks.analyse") == retries + 1
    assert value("emotionsite_celery_task_duration_seconds_count", task="recognition.tasks.analyse", state="RETRY") == retried_runs + 1  # fmt: skip

    tasks.analyse.apply(args=("not-a-number",))
    assert value("emotionsite_celery_task_failures_total", task="recognition.tasks.analyse") == failures + 1


@pytest.mark.django_db(transaction=True)
async def test_live_sessions_frames_and_drops_are_counted(user):
    from asgiref.sync import sync_to_async
    from django.db import connections

    from tests.test_consumers import answer, connect, frame, jpeg

    names = ("analysed", "dropped", "failed")
    before = {n: value("emotionsite_live_frames_total", outcome=n) for n in names}
    open_before = value("emotionsite_live_sessions")
    started_before = value("emotionsite_live_sessions_started_total")
    socket = await connect(user)
    assert value("emotionsite_live_sessions") == open_before + 1
    await socket.send_to(bytes_data=frame(1, jpeg()))
    assert (await answer(socket))["type"] == "result"
    data = jpeg()
    for seq in range(2, 12):
        await socket.send_to(bytes_data=frame(seq, data))
    replies = [await answer(socket, 20) for _ in range(10)]
    await socket.send_to(bytes_data=frame(12, b"not an image"))
    assert (await answer(socket, 20))["type"] == "error"
    await socket.disconnect()
    kinds = [r["type"] for r in replies]
    after = {n: value("emotionsite_live_frames_total", outcome=n) for n in names}
    assert after["analysed"] - before["analysed"] == 1 + kinds.count("result")
    assert after["dropped"] - before["dropped"] == kinds.count("dropped") >= 1
    assert after["failed"] - before["failed"] == 1
    assert value("emotionsite_live_sessions") == open_before
    assert value("emotionsite_live_sessions_started_total") == started_before + 1
    await sync_to_async(connections.close_all)()


# --- a running server, scraped over HTTP ---------------------------------------------------------------


SIGN_UP = (
    "import os; from django.contrib.auth.models import User; "
    "from rest_framework.authtoken.models import Token; "
    "user = User.objects.create_user('scraper', password=os.environ['SITE_PASSWORD']); "
    "print(Token.objects.create(user=user).key)"
)


def start(site: Site, timeout: float = 600) -> None:
    """``Site.start`` with a longer wait: on this machine, shared with training at a higher
    priority, daphne has taken over a minute to import the site and listen."""
    with site.log_path.open("ab") as log:
        site.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(site.port), "emotionsite.asgi:application"],
            cwd=ROOT, env=site.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_port(site.port, timeout=timeout, process=site.process)
    except TimeoutError:
        site.stop()
        raise RuntimeError(f"daphne did not start:\n{site.log_tail()}") from None


@pytest.mark.services
def test_a_scrape_of_the_running_server_shows_the_upload(tmp_path):
    """daphne on the embedded default (SQLite, eager Celery), JSON logs: an API upload moves the
    request, analysis, inference and task metrics by exactly one, and its request id is in the
    server's log lines, the request's and the task's."""
    site = Site(tmp_path, METRICS_TOKEN=TOKEN, WARM_UP_MODELS="False", LOG_FORMAT="json")
    site.manage("migrate", "--noinput")
    api_token = site.manage("shell", "-c", SIGN_UP, SITE_PASSWORD="scrape-pass-5531").split()[-1]
    start(site)
    try:
        scrape = lambda **kw: requests.get(f"{site.url}/metrics", timeout=60, **kw)
        assert scrape().status_code == 403
        assert scrape(headers={"Authorization": "Bearer nope"}).status_code == 403
        first = scrape(headers={"Authorization": f"Bearer {TOKEN}"})
        assert first.status_code == 200, site.log_tail()
        before = parse(first.text)

        rid = "scrape-test-" + uuid.uuid4().hex[:8]
        started = time.perf_counter()
        response = requests.post(
            f"{site.url}/api/v1/analyses/?wait=30",
            files={"file": ("face.jpg", (MEDIA / "test_image.jpg").read_bytes(), "image/jpeg")},
            headers={"Authorization": f"Token {api_token}", "X-Request-ID": rid},
            timeout=180,
        )
        upload_s = time.perf_counter() - started
        assert response.status_code == 201, response.text[:500]
        assert response.headers["X-Request-ID"] == rid
        model = response.json()["result"]["model"]["name"]
        after = parse(scrape(headers={"Authorization": f"Bearer {TOKEN}"}).text)
    finally:
        site.stop()

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    http = {"route": "/api/v1/analyses/", "method": "POST"}
    assert delta("emotionsite_http_requests_total", status="201", **http) == 1
    assert delta("emotionsite_http_request_duration_seconds_count", **http) == 1
    assert 0 < delta("emotionsite_http_request_duration_seconds_sum", **http) <= upload_s
    assert delta("emotionsite_http_requests_total", route="/metrics", method="GET", status="200") == 1
    assert delta("emotionsite_http_requests_total", route="/metrics", method="GET", status="403") == 0
    for status in ("queued", "running", "done"):
        assert delta("emotionsite_analyses_total", kind="image", status=status) == 1, status
    assert delta("emotionsite_analyses_total", kind="image", status="failed") == 0
    for stage in ("decode", "detect", "classify"):
        assert delta("emotionsite_inference_seconds_count", model=model, stage=stage) == 1, stage
    assert delta("emotionsite_celery_task_duration_seconds_count", task="recognition.tasks.analyse", state="SUCCESS") == 1  # fmt: skip
    assert sample(after, "emotionsite_queue_depth", queue="celery") == 0
    assert sample(after, "emotionsite_analyses_unfinished", kind="image", status="queued") == 0
    assert sample(after, "emotionsite_scrape_dependency_up", dependency="database") == 1

    log = site.log_path.read_text(errors="replace")
    ours = [json.loads(line) for line in log.splitlines() if rid in line]
    assert any(line.get("route") == "/api/v1/analyses/" and line["status"] == 201 for line in ours), log[-3000:]
    assert any(line.get("task") == "recognition.tasks.analyse" for line in ours), log[-3000:]
    assert all(line["request_id"] == rid for line in ours)
    assert TOKEN not in log and api_token not in log
    print(f"\nupload {upload_s:.2f} s; {len(ours)} log lines carry request id {rid}")


# --- a real Celery worker: its own endpoint, multi-process mode, JSON logs ------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def metrics_worker(celery_on_redis, settings, tmp_path):  # noqa: F811 - fixture
    """A prefork worker (one pool process) with WORKER_METRICS_PORT, a multi-process folder and
    JSON logs; yields (process, metrics URL, log path)."""
    port = free_port()
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url(),
        "CHANNELS_PREFIX": celery_on_redis,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DJANGO_SETTINGS_MODULE": "emotionsite.settings",
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": TOKEN,
        "WORKER_METRICS_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        # The first job loads the models (warm-up would count nothing either, but on this busy
        # machine it kept the job queued for minutes before the pool process took it).
        "WARM_UP_MODELS": "False",
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "emotionsite", "worker", "-P", "prefork", "-c", "1",
             "-Q", celery_on_redis, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    yield proc, f"http://127.0.0.1:{port}/metrics", log_path
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    print(log_path.read_text(errors="replace")[-3000:])


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_worker_exports_task_metrics_and_logs_the_request_id(metrics_worker, user, json_log):
    proc, url, log_path = metrics_worker
    api_token = Token.objects.create(user=user).key
    rid = "worker-test-" + uuid.uuid4().hex[:8]
    response = Client().post(
        "/api/v1/analyses/",
        {"file": SimpleUploadedFile("face.jpg", (MEDIA / "test_image.jpg").read_bytes(), "image/jpeg")},
        headers={"Authorization": f"Token {api_token}", "X-Request-ID": rid},
    )
    assert response.status_code == 202, response.content[:300]
    done = wait_for(response.json()["id"], proc, timeout=900)
    assert done.status == "done", done.error
    model = done.models_used["face"]["name"]

    tasks.analyse.delay("not-a-number")  # a task that ends in an exception: a failure
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def scrape() -> dict:
        answer = requests.get(url, headers=auth, timeout=10)
        assert answer.status_code == 200
        return parse(answer.text)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        samples = scrape()
        if sample(samples, "emotionsite_celery_task_failures_total", task="recognition.tasks.analyse") >= 1:
            break
        time.sleep(0.5)
    analyse = {"task": "recognition.tasks.analyse"}
    assert sample(samples, "emotionsite_celery_task_failures_total", **analyse) == 1
    assert sample(samples, "emotionsite_celery_task_duration_seconds_count", state="SUCCESS", **analyse) == 1
    assert sample(samples, "emotionsite_celery_task_duration_seconds_count", state="FAILURE", **analyse) == 1
    assert 0 < sample(samples, "emotionsite_celery_task_duration_seconds_sum", state="SUCCESS", **analyse) < 900
    assert sample(samples, "emotionsite_celery_task_retries_total", **analyse) == 0
    for status in ("running", "done"):  # the web process counted "queued"
        assert sample(samples, "emotionsite_analyses_total", kind="image", status=status) == 1
    for stage in ("decode", "detect", "classify"):  # warm-up on blank input is not counted
        assert sample(samples, "emotionsite_inference_seconds_count", model=model, stage=stage) == 1, stage
    assert requests.get(url, timeout=10).status_code == 403
    assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 403

    # The request id: in this (web) process's lines for the upload and in the worker's task lines.
    web = [line for line in json_lines(json_log.getvalue()) if line.get("request_id") == rid]
    assert any(line.get("route") == "/api/v1/analyses/" and line["status"] == 202 for line in web), web
    worker_lines = []
    for raw in log_path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            worker_lines.append(json.loads(raw))
    assert worker_lines, "the worker writes JSON lines"
    ours = [line for line in worker_lines if line.get("request_id") == rid]
    assert any(line.get("task") == "recognition.tasks.analyse" and line.get("task_id") for line in ours), ours
    assert any("succeeded" in line["message"] or "SUCCESS" in line["message"] for line in ours), ours
    assert TOKEN not in log_path.read_text(errors="replace")
