"""The site as separate hosts would run it, on this machine: daphne web servers and Celery workers
as subprocesses, each with its OWN MEDIA_ROOT (so a local path cannot work by accident), sharing
only what hosts share: PostgreSQL, a Redis (broker, results, cache, channel layer) and the S3
object store (moto's server, tests/objectstore.py). Used by tests/test_two_hosts.py,
tests/test_load_faults.py and benchmarks/bench_cluster.py.

Everything here is a real process spoken to over sockets; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from tests import livesite
from tests.objectstore import S3Server, bucket_of

ROOT = Path(__file__).resolve().parents[1]
XHR = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}
FRAME = struct.Struct(">BI")  # live binary message header: kind (1 = frame), sequence number


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private ``redis-server`` without persistence (the flags of scripts/services.sh) on a free
    port, stopped and started at will by the fault and load tests: the machine's shared Redis on
    6379 serves other test runs and helpers, which must not see the outage. ``stop`` shuts it down
    without saving, so what it held (queued messages, groups) is lost, as in a restart."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = Path(directory)
        self.proc: subprocess.Popen | None = None

    def up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait("Redis to answer", self.up, 30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None
        wait("Redis to stop", lambda: not self.up(), 15)


def wait(what: str, check, timeout: float, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class Cluster:
    """Web servers and workers on separate media folders, one database, Redis and bucket."""

    def __init__(self, directory: Path, *, database_url: str, redis_url: str, s3: S3Server,
                 secret_key: str, visibility_timeout: int = 10, **extra_env: str) -> None:  # fmt: skip
        self.dir = Path(directory)
        self.s3 = s3
        self.storage_url = s3.bucket()
        self.bucket = bucket_of(self.storage_url)
        self.queue = f"cluster-{uuid.uuid4().hex[:8]}"
        self.env = {
            "DATABASE_URL": database_url, "REDIS_URL": redis_url, "MEDIA_STORAGE_URL": self.storage_url,
            "CELERY_QUEUE": self.queue, "CHANNELS_PREFIX": self.queue, "SECRET_KEY": secret_key,
            "CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout), "DJANGO_SETTINGS_MODULE": "emotionsite.settings",
            "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
            # No collectstatic here: pages name the static files as they are.
            "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage", **extra_env,
        }  # fmt: skip
        self.webs: list[livesite.Site] = []
        self.workers: list[subprocess.Popen] = []

    # --- processes ---

    def media_root(self, host: str) -> Path:
        folder = self.dir / host / "media"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def start_web(self, **env: str) -> livesite.Site:
        host = f"web{len(self.webs)}"
        (self.dir / host).mkdir(parents=True, exist_ok=True)
        site = livesite.Site(self.dir / host, **{**self.env, "MEDIA_ROOT": str(self.media_root(host)),
                                                  "DEBUG": "false", "HTTPS": "false",
                                                  "ALLOWED_HOSTS": "127.0.0.1,localhost", **env})  # fmt: skip
        site.start(timeout=120)
        self.webs.append(site)
        return site

    def start_worker(self, *, beat: bool = False, name: str = "", **env: str) -> subprocess.Popen:
        """A worker host (one prefork child); ``beat``: it also runs Celery beat (-B), which
        re-sends the analyses whose broker message was lost."""
        host = name or f"worker{len(self.workers)}"
        log = open(self.dir / f"{host}.log", "ab")  # noqa: SIM115 - closed when the process ends
        extra = ["-B", "-s", str(self.dir / f"{host}-beat-schedule")] if beat else []
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "emotionsite", "worker", "-P", "prefork", "-c", "1",
             "-Q", self.queue, "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"{host}@%h", "-l", "info", *extra],
            cwd=ROOT, env={**os.environ, **self.env, "MEDIA_ROOT": str(self.media_root(host)), **env},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def kill_worker(self, proc: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool children (no clean shutdown, no acknowledgement)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        for site in self.webs:
            site.stop()
        for proc in self.workers:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=30)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill_worker(proc)

    def logs(self, chars: int = 2500) -> str:
        parts = [f"--- {site.log_path}\n{site.log_tail(chars)}" for site in self.webs]
        for log in sorted(self.dir.glob("worker*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True, capture_output=True,
                              text=True, env={**os.environ, **self.env, "MEDIA_ROOT": str(self.media_root("admin"))})  # fmt: skip
        return done.stdout

    def local_files(self) -> list[Path]:
        """Files under any host's MEDIA_ROOT (with an object store there must be none)."""
        return sorted(p for p in self.dir.glob("*/media/**/*") if p.is_file())

    def keys(self, prefix: str = "") -> list[str]:
        return [k for k in self.s3.keys(self.bucket, prefix) if not k.startswith(".readiness/")]


PASSWORD = "cluster-pass-9876"  # every user session_cookies makes


def session_cookies(cluster: Cluster, usernames: list[str]) -> dict[str, tuple[int, str]]:
    """Create users (verified, may upload) and a signed-in session for each: {name: (id, sessionid)}."""
    code = (
        "import json, os; from django.contrib.auth import get_user_model; from django.test import Client\n"
        "out = {}\n"
        "for name in json.loads(os.environ['CLUSTER_USERS']):\n"
        "    u = get_user_model().objects.create_user(name, password=os.environ['CLUSTER_PASSWORD'])\n"
        "    c = Client(); c.force_login(u); out[name] = [u.pk, c.cookies['sessionid'].value]\n"
        "print('COOKIES=' + json.dumps(out))"
    )
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, check=True,
                          capture_output=True, text=True,
                          env={**os.environ, **cluster.env, "CLUSTER_USERS": json.dumps(usernames), "CLUSTER_PASSWORD": PASSWORD,
                               "MEDIA_ROOT": str(cluster.media_root("admin"))})  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("COOKIES="))
    return {name: (pk, cookie) for name, (pk, cookie) in json.loads(line[8:]).items()}


class Browser:
    """One signed-in person over HTTP (a requests session with the site's cookie and CSRF)."""

    def __init__(self, base_url: str, sessionid: str, timeout: float = 60) -> None:
        self.base = base_url
        self.http = requests.Session()
        self.http.cookies.set("sessionid", sessionid, domain="127.0.0.1")
        self.timeout = timeout
        self.csrf = ""

    def _csrf(self) -> str:
        if not self.csrf:
            page = self.http.get(f"{self.base}/upload/", timeout=self.timeout)
            page.raise_for_status()
            self.csrf = self.http.cookies.get("csrftoken") or re.search(
                r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)  # fmt: skip
        return self.csrf

    def upload(self, data: bytes, name: str) -> requests.Response:
        return self.http.post(f"{self.base}/upload/", files={"file": (name, data)},
                              headers={**XHR, "X-CSRFToken": self._csrf(), "Referer": f"{self.base}/upload/"},
                              timeout=self.timeout)  # fmt: skip

    def statuses(self, ids: list[int]) -> dict[int, dict]:
        answer = self.http.get(f"{self.base}/analyses/status/", params={"ids": ",".join(map(str, ids))},
                               timeout=self.timeout)  # fmt: skip
        answer.raise_for_status()
        return {a["id"]: a for a in answer.json()["analyses"]}

    def delete_all(self) -> requests.Response:
        return self.http.post(f"{self.base}/account/delete-data/", data={"csrfmiddlewaretoken": self._csrf()},
                              headers={"Referer": f"{self.base}/account/delete-data/"}, allow_redirects=False,
                              timeout=self.timeout)  # fmt: skip

    def delete_account(self, password: str = PASSWORD) -> requests.Response:
        return self.http.post(f"{self.base}/account/delete/", data={"csrfmiddlewaretoken": self._csrf(), "password": password},
                              headers={"Referer": f"{self.base}/account/delete/"}, allow_redirects=False,
                              timeout=self.timeout)  # fmt: skip


def first_id(response: requests.Response) -> int:
    return int(response.json()["analyses"][0]["id"])


async def live_frames(port: int, sessionid: str, frames: list[bytes], *, seconds: float,
                      on_reply=None, save: bool = True, fps: float = 15.0, stats: dict | None = None) -> dict:  # fmt: skip
    """A live client on ``port``: hello, then one frame in flight at a time, at most ``fps`` a
    second (a webcam's pace; the site refuses more than LIVE_MAX_MESSAGES_PER_SECOND) for
    ``seconds``, then stop (saves the session). Returns round trips (ms), errors, the saved message."""
    import asyncio

    from websockets.asyncio.client import connect

    if stats is None:  # the caller's dict keeps what was measured when the socket ends with an error
        stats = {}
    stats.update({"rtt": [], "errors": [], "faces": 0, "saved": None})
    async with connect(f"ws://127.0.0.1:{port}/ws/live/", origin=f"http://127.0.0.1:{port}",
                       additional_headers={"Cookie": f"sessionid={sessionid}"}, compression=None,
                       max_size=2**22, open_timeout=30) as ws:  # fmt: skip
        await ws.send(json.dumps({"type": "hello"}))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            stats["errors"].append(f"hello: {ready}")
            return stats
        end = time.perf_counter() + seconds
        seq, sent = 0, 0.0
        while time.perf_counter() < end:
            seq += 1
            if seq > 1:
                await asyncio.sleep(max(0.0, sent + 1 / fps - time.perf_counter()))
            sent = time.perf_counter()
            await ws.send(FRAME.pack(1, seq) + frames[seq % len(frames)])
            reply = json.loads(await ws.recv())
            if reply.get("type") == "result":
                stats["rtt"].append((time.perf_counter() - sent) * 1000)
                stats["faces"] += len(reply.get("faces") or [])
            else:
                stats["errors"].append(reply.get("code") or reply.get("type"))
            if on_reply is not None:
                on_reply(seq)
        if save:
            await ws.send(json.dumps({"type": "stop"}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("type") == "saved":
                    stats["saved"] = message
                    break
    return stats


def live_jpegs(count: int = 8) -> list[bytes]:
    """640x480 webcam-like JPEGs of the real test photo's face (the ``selfie`` scene of
    benchmarks/bench_live.py), each shifted a few pixels like a hand-held camera."""
    import io

    from PIL import Image

    frames = []
    with Image.open(ROOT / "tests" / "media" / "test_image.jpg") as photo:
        photo = photo.convert("RGB")
        for i in range(count):
            dx, dy = (i * 5) % 17 - 8, (i * 3) % 13 - 6
            out = io.BytesIO()
            photo.crop((500 + dx, 620 + dy, 1700 + dx, 1520 + dy)).resize((640, 480)).save(out, "JPEG", quality=80)
            frames.append(out.getvalue())
    return frames
