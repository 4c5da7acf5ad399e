"""Fault tests against the machine's real services: a Celery worker SIGKILLed mid-job, Redis
restarted with queued jobs and a live session open, PostgreSQL connections terminated.

Marked ``fault`` (and ``services``); ``./scripts/test`` runs them. Each test is bounded in time
(every wait has a deadline). The Redis restarts happen on a private ``redis-server`` (the flags of
scripts/services.sh, its own port), never on the machine's shared Redis, which other test runs
and helpers use at the same time.
Workers run on a private queue with the pytest-django test database (see test_tasks_worker.py)
and a short broker visibility timeout, so a message of a killed worker comes back in seconds, not
the production 15 minutes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.test import Client

from recognition.analyses import services
from recognition.analyses.models import Analysis
from tests.bad_inputs import face_jpeg
from tests.cluster import RedisServer
from tests.conftest import redis_url
from tests.test_tasks_worker import celery_on_redis, database_url  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.fault,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
]
ROOT = Path(__file__).resolve().parent.parent
VISIBILITY = (
    5  # seconds before an unacknowledged message of a dead worker is handed out again
)
FINISHED = ("done", "failed")


# --- helpers ----------------------------------------------------------------------------------


def wait_until(
    what: str, check: Callable[[], bool], timeout: float, every: float = 0.3
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def statuses(ids: list[int]) -> dict[int, str]:
    return dict(Analysis.objects.filter(pk__in=ids).values_list("pk", "status"))


@pytest.fixture
def redis_server(tmp_path, monkeypatch) -> Iterator[RedisServer]:
    """A private Redis for this test; workers and this process use it (TEST_REDIS_URL)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    monkeypatch.setenv("TEST_REDIS_URL", server.url)
    try:
        yield server
    finally:
        server.stop()


class Workers:
    """Start real ``celery worker`` subprocesses (each in its own process group) and stop them."""

    def __init__(self, queue: str, media_root: Path, log_dir: Path) -> None:
        self.queue, self.media_root, self.log_dir = queue, media_root, log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed by the process end
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "emotionsite", "worker", "-P", "prefork", "-c", "1",
             "-Q", self.queue, "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"fault{len(self.procs)}@%h", "-l", "info", *extra],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": f"{database_url()}?application_name={self.queue}",
                 "REDIS_URL": redis_url(),
                 "CELERY_QUEUE": self.queue, "CHANNELS_PREFIX": self.queue, "MEDIA_ROOT": str(self.media_root),
                 "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY), "DJANGO_SETTINGS_MODULE": "emotionsite.settings",
                 # Cold models: the first job loads them (seconds), a window wide enough to
                 # kill a worker with a job in flight; warmed up, a job lasts ~0.1 s.
                 "WARM_UP_MODELS": "False",
                 **(env or {})},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        """Signal the worker and its pool children (the whole process group)."""
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc, signal.SIGCONT)
                self.kill(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.kill(proc)
        for log in sorted(self.log_dir.glob("worker-*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def workers(celery_on_redis, settings, tmp_path) -> Iterator[Workers]:  # noqa: F811 - fixture
    pool = Workers(celery_on_redis, Path(settings.MEDIA_ROOT), tmp_path)
    yield pool
    pool.stop_all()


def upload(user, n: int = 1, name: str = "face.jpg") -> list[int]:
    """``n`` real photos through the upload service (enqueued on commit, as the page does)."""
    return [
        services.create_analysis(owner=user, upload=face_jpeg(), filename=name).pk
        for _ in range(n)
    ]


def assert_all_finished_cleanly(ids: list[int]) -> list[Analysis]:
    found = list(Analysis.objects.filter(pk__in=ids).order_by("pk"))
    assert len(found) == len(ids)
    for analysis in found:
        assert analysis.status in FINISHED, (analysis.pk, analysis.status)
        if analysis.status == "failed":
            assert analysis.error and len(analysis.error) > 10
        else:
            assert analysis.face_count >= 1 and analysis.result["faces"]
    return found


# --- a worker killed mid-job ------------------------------------------------------------------


def test_sigkilled_worker_loses_no_job(workers, user):
    """SIGKILL (no clean shutdown, no ack) while one job runs and others wait: after a new worker
    starts, the running job is handed out again (acks_late + visibility timeout) and every job
    ends done; none is stuck in queued or running."""
    ids = upload(user, 4)
    first = workers.start()
    wait_until(
        "a job to start running",
        lambda: "running" in statuses(ids).values(),
        180,
        every=0.1,
    )
    workers.kill(first)
    at_kill = statuses(ids)
    running = [pk for pk, s in at_kill.items() if s == "running"]
    assert running, at_kill
    assert all(s in ("queued", "running", "done") for s in at_kill.values()), at_kill

    time.sleep(
        VISIBILITY + 1
    )  # the dead worker's unacknowledged message is now visible again
    second = workers.start()
    wait_until(
        "every job to finish",
        lambda: all(s in FINISHED for s in statuses(ids).values()),
        240,
    )
    assert second.poll() is None, "the new worker died"
    done = {a.pk: a for a in assert_all_finished_cleanly(ids)}
    assert all(a.status == "done" for a in done.values()), {
        a.pk: a.error for a in done.values()
    }
    for pk in running:
        assert done[pk].attempts >= 2, "the interrupted job was run again"


def test_pool_child_killed_is_redelivered_at_once(workers, user):
    """Only the pool process dies (e.g. the kernel's OOM killer): the worker notices, the task is
    rejected back to the queue (reject_on_worker_lost) and runs again in a fresh child."""
    ids = upload(user, 1)
    proc = workers.start()
    wait_until(
        "the job to start running",
        lambda: statuses(ids)[ids[0]] == "running",
        180,
        every=0.1,
    )
    children = subprocess.run(
        ["pgrep", "-P", str(proc.pid)], check=False, capture_output=True, text=True
    ).stdout.split()
    assert children, "prefork worker has a pool child"
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    wait_until("the job to finish", lambda: statuses(ids)[ids[0]] in FINISHED, 180)
    (analysis,) = assert_all_finished_cleanly(ids)
    assert analysis.status == "done" and analysis.attempts >= 2
    assert proc.poll() is None, "the worker itself survives its child"


# --- Redis restarted --------------------------------------------------------------------------


def test_redis_restart_with_queued_jobs_recovers(
    redis_server, workers, user, alice_client, settings
):
    """Jobs queued in Redis when it restarts (their messages are gone) and an upload made while it
    is down (never sent) all end done once Redis is back: Celery beat's requeue_lost re-sends
    analyses whose message was lost. Pages keep working during the outage."""
    # This process shares the worker's Redis cache, where the "sent" marks live.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url(),
        }
    }
    warm = workers.start("-B", "-s", str(workers.log_dir / "beat-schedule"),
                         env={"REQUEUE_LOST_INTERVAL": "2", "REQUEUE_QUEUED_AFTER": "4"})  # fmt: skip
    (first,) = upload(user, 1)
    wait_until(
        "the worker to be ready", lambda: statuses([first])[first] in FINISHED, 240
    )
    workers.kill(warm, signal.SIGSTOP)  # paused: the next uploads wait in Redis
    queued = upload(user, 2)
    redis_server.stop()
    try:
        during = upload(
            user, 1, name="during-outage.jpg"
        )  # enqueue fails: the upload still stands
        assert alice_client.get("/history/").status_code == 200
        page = alice_client.get(f"/analyses/{during[0]}/")
        assert page.status_code == 200 and "during-outage.jpg" in page.content.decode()
    finally:
        redis_server.start()
        workers.kill(warm, signal.SIGCONT)
    ids = [first, *queued, *during]
    wait_until(
        "every job to finish after the outage",
        lambda: all(s in FINISHED for s in statuses(ids).values()),
        240,
    )
    assert all(a.status == "done" for a in assert_all_finished_cleanly(ids))
    assert warm.poll() is None, "the worker survived the outage"
    (after,) = upload(user, 1)  # and new work flows as before
    wait_until(
        "a new upload to finish", lambda: statuses([after])[after] in FINISHED, 120
    )
    assert statuses([after])[after] == "done"


@pytest.fixture
async def _close_db_connections():
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.usefixtures("_close_db_connections")
async def test_redis_restart_during_a_live_session(redis_server, user, settings):
    """A live socket on the Redis channel layer: when Redis goes away the socket ends (its
    channel-layer read fails; it never lingers half-alive, deaf to its groups), and the page's
    reconnect after Redis is back gets a working session whose group membership works again."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from tests.test_channels_redis import production_layer_config
    from tests.test_consumers import answer, assert_face_result, connect, frame, jpeg

    layers = await sync_to_async(production_layer_config)(redis_url())
    layers["default"]["CONFIG"]["prefix"] = f"fault-live-{os.getpid()}"
    settings.CHANNEL_LAYERS = layers
    ws = await connect(user)
    await ws.send_to(bytes_data=frame(1, jpeg()))
    assert_face_result(await answer(ws), 1)
    await sync_to_async(redis_server.stop)()
    try:
        try:
            output = await ws.receive_output(timeout=30)
            assert output["type"] == "websocket.close", output
        except RedisConnectionError:
            pass  # the consumer ended with the layer's error (daphne closes the socket with 1011)
    finally:
        await sync_to_async(redis_server.start)()
    # The page reconnects (with back-off) until it gets a session. The first socket after the
    # restart may still meet a pooled connection to the old server and end like the one above.
    for attempt in range(3):
        try:
            again = await connect(user)  # joins the person's group through Redis again
            break
        except (RedisConnectionError, TimeoutError):
            assert attempt < 2, "no working socket after three reconnects"
    await again.send_to(bytes_data=frame(2, jpeg()))
    assert_face_result(await answer(again, 60), 2)
    client = Client()
    await sync_to_async(client.force_login)(user)
    await sync_to_async(client.post)(
        "/accounts/logout/"
    )  # reaches the socket through its group
    assert await again.receive_output(timeout=30) == {
        "type": "websocket.close",
        "code": 4401,
    }


def test_requeue_lost_resends_only_what_was_lost(user, settings):
    """The rules of services.requeue_lost, with in-process (eager) tasks: a queued analysis with
    its sent-mark is left alone; without one (lost or never sent) it is sent again; a job running
    past the hard time limit is sent again, and failed once it has been tried three times."""
    from datetime import timedelta

    from django.core.cache import cache
    from django.utils import timezone

    hour_ago = timezone.now() - timedelta(hours=1)

    def make(**fields) -> int:
        analysis = services.create_analysis(
            owner=user, upload=face_jpeg(), enqueue=False
        )
        Analysis.objects.filter(pk=analysis.pk).update(**fields)
        return analysis.pk

    lost = make(created=hour_ago)
    waiting = make(created=hour_ago)
    cache.set(services.SENT_MARK.format(waiting), 1)
    fresh = make()
    dead = make(status="running", started=hour_ago, attempts=1)
    hopeless = make(status="running", started=hour_ago, attempts=3)
    busy = make(status="running", started=timezone.now(), attempts=1)

    assert sorted(services.requeue_lost(queued_after=60)) == sorted([lost, dead])
    after = {a.pk: a for a in Analysis.objects.all()}
    assert (
        after[lost].status == "done"
        and after[dead].status == "done"
        and after[dead].attempts == 2
    )
    assert after[waiting].status == "queued" and after[fresh].status == "queued"
    assert after[busy].status == "running"
    assert after[hopeless].status == "failed" and "interrupted" in after[hopeless].error
    assert services.requeue_lost(queued_after=60) == []  # everything lost was sent once


# --- PostgreSQL connections dropped -----------------------------------------------------------


def admin_connection() -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432,
                           user=db.get("USER") or "postgres", dbname="postgres", autocommit=True)  # fmt: skip


def terminate_backends(application_name: str) -> int:
    """pg_terminate_backend the connections a worker opened (tagged with its queue name, so no
    other test run's connection is touched); returns how many."""
    with admin_connection() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


def wsgi_get(path: str, cookie: str) -> int:
    """A request through Django's real WSGI handler (unlike the test Client, it runs
    close_old_connections at request start and end, where the health check is armed)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    status: list[str] = []
    response = WSGIHandler()(RequestFactory().get(path, HTTP_COOKIE=cookie).environ,
                             lambda s, headers, exc_info=None: status.append(s))  # fmt: skip
    response.close()  # request_finished
    return int(status[0].split()[0])


@pytest.mark.parametrize("health_checks", [True, False])
def test_web_request_after_its_connection_was_killed(user, health_checks):
    """A persistent connection (CONN_MAX_AGE) killed by the server between two requests: with
    CONN_HEALTH_CHECKS (the site's setting) the next request reconnects; without it, it is a 500
    (the contrast shows the check is what saves it)."""
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    saved = {
        k: connection.settings_dict[k] for k in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")
    }
    connection.close()
    connection.settings_dict.update(CONN_MAX_AGE=600, CONN_HEALTH_CHECKS=health_checks)
    try:
        assert wsgi_get("/history/", cookie) == 200
        pid = connection.connection.info.backend_pid  # kept open for the next request
        with admin_connection() as admin:
            assert (
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
                is True
            )
        assert wsgi_get("/history/", cookie) == (200 if health_checks else 500)
        assert (
            wsgi_get("/history/", cookie) == 200
        )  # a broken connection is never reused
        assert connection.connection.info.backend_pid != pid
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def test_worker_survives_its_database_connections_being_killed(
    workers, user, group_photo
):
    """The server drops the worker's connections again and again while jobs run: the interrupted
    tasks retry (transient database errors) on a fresh connection and every job ends done."""
    proc = workers.start()
    (first,) = upload(user, 1)
    wait_until(
        "the worker to be ready", lambda: statuses([first])[first] in FINISHED, 240
    )
    ids = [
        services.create_analysis(
            owner=user, upload=group_photo, filename="group.jpg"
        ).pk
        for _ in range(3)
    ]
    kills, deadline = 0, time.monotonic() + 60
    while (
        kills < 3
        and time.monotonic() < deadline
        and not all(s in FINISHED for s in statuses(ids).values())
    ):
        kills += terminate_backends(
            workers.queue
        )  # connections live only while a task runs
        time.sleep(0.05)
    assert kills >= 1, "no worker connection was caught open"
    wait_until(
        "every job to finish",
        lambda: all(s in FINISHED for s in statuses(ids).values()),
        240,
    )
    assert all(a.status == "done" for a in assert_all_finished_cleanly(ids))
    assert proc.poll() is None
