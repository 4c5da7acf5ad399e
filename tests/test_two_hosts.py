"""Past one machine: a web server and a Celery worker that share no folder.

daphne (web) and a Celery worker run as separate processes with DIFFERENT MEDIA_ROOT folders,
sharing only the PostgreSQL test database, a private Redis and an S3 bucket on a real S3 server
process (moto). A photo, a recording and a video uploaded to the web server are analysed by the
worker, which can only have read them from the bucket; deleting the account then leaves no
object of the user in the bucket and no file in any host's folder. A second daphne on the same
Redis channel layer keeps serving a live session while the first one stops.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from django.db import connection

from tests import cluster
from tests.conftest import SPEECH
from tests.test_tasks_worker import database_url
from tests.video_media import make_video

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_private(tmp_path):
    server = cluster.RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hosts(tmp_path, s3_server, redis_private, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the processes share the PostgreSQL test database (./scripts/test)")
    group = cluster.Cluster(tmp_path / "hosts", database_url=database_url(), redis_url=redis_private.url,
                            s3=s3_server, secret_key=settings.SECRET_KEY)  # fmt: skip
    yield group
    group.stop()
    print(group.logs())


def wait_finished(browser: cluster.Browser, ids: list[int], timeout: float) -> dict[int, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = browser.statuses(ids)
        if len(found) == len(ids) and all(a["status"] in ("done", "failed") for a in found.values()):
            return found
        time.sleep(0.5)
    raise AssertionError(f"not finished in {timeout:.0f} s: {browser.statuses(ids)}")


def test_web_and_worker_on_separate_media_folders_share_only_the_bucket(hosts):
    web = hosts.start_web(WARM_UP_MODELS="False")
    hosts.start_worker()
    (uid, cookie), = cluster.session_cookies(hosts, ["alice"]).values()
    browser = cluster.Browser(web.url, cookie)
    photo = (cluster.ROOT / "tests" / "media" / "test_image.jpg").read_bytes()
    speech = (SPEECH / "03-01-03-02-01-01-18.flac").read_bytes()
    video = make_video(seconds=2.0, size=(320, 240))
    ids = []
    for data, name in ((photo, "me.jpg"), (speech, "voice.flac"), (video, "clip.mp4")):
        response = browser.upload(data, name)
        assert response.status_code == 201, response.text
        ids.append(cluster.first_id(response))
    found = wait_finished(browser, ids, timeout=240)
    assert [found[i]["status"] for i in ids] == ["done"] * 3, found
    assert found[ids[0]]["face_count"] >= 1 and found[ids[0]]["emotion"]
    assert found[ids[1]]["emotion"] and found[ids[2]]["emotion"]
    keys = hosts.keys(f"users/{uid}/")
    assert len(keys) == 5  # photo + thumb + preview, recording, video
    assert hosts.local_files() == []  # neither host kept a local copy
    # The original comes back from the bucket through the web server, in ranges.
    part = browser.http.get(f"{web.url}/analyses/{ids[2]}/media/", headers={"Range": "bytes=10-109"}, timeout=30)
    assert part.status_code == 206 and part.content == video[10:110]

    ready = browser.http.get(f"{web.url}/readyz", timeout=30).json()["checks"]
    assert ready["media"]["ok"] and ready["media"]["detail"] == "object store writable"

    refused = browser.delete_account("not-the-password")
    assert refused.status_code == 400 and len(hosts.keys(f"users/{uid}/")) == 5  # nothing deleted
    gone = browser.delete_account()
    assert gone.status_code == 302 and gone.headers["Location"] == "/", gone.text
    cluster.wait("the user's objects to leave the bucket", lambda: hosts.keys(f"users/{uid}/") == [], 30)
    assert hosts.keys() == [] and hosts.local_files() == []
    signed_out = browser.http.get(f"{web.url}/analyses/status/", params={"ids": ids[0]}, allow_redirects=False, timeout=30)
    assert signed_out.status_code in (302, 401, 403)  # the account and its session are gone


def test_a_second_web_server_serves_live_while_the_first_stops(hosts):
    first = hosts.start_web(WARM_UP_MODELS="False")
    second = hosts.start_web()  # warms its models: it serves the live socket
    users = cluster.session_cookies(hosts, ["bob"])
    (_, cookie), = users.values()
    frames = cluster.live_jpegs()
    stopped = threading.Event()

    def stop_first(seq: int) -> None:
        if seq == 15 and not stopped.is_set():
            stopped.set()
            threading.Thread(target=first.stop, daemon=True).start()

    cluster.wait("the second server's models", lambda: cluster.Browser(second.url, cookie).http.get(
        f"{second.url}/readyz", timeout=30).status_code == 200, 180)  # fmt: skip
    stats = asyncio.run(cluster.live_frames(second.port, cookie, frames, seconds=12, on_reply=stop_first))
    assert stopped.is_set() and first.process is None  # the first server is gone
    assert stats["errors"] == [] and len(stats["rtt"]) > 30, stats
    assert stats["faces"] >= len(stats["rtt"]) * 0.8
    saved = stats["saved"]
    assert saved and saved["id"], saved  # the session was saved (database through the second server)
    browser = cluster.Browser(second.url, cookie)
    assert browser.statuses([saved["id"]])[saved["id"]]["kind"] == "live"
