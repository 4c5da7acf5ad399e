"""A Redis that does not answer (a host gone from the network: its SYNs are dropped, nothing
refuses the connection) costs a request seconds, not minutes: the broker, the result backend,
the cache and the channel layer connect with ``REDIS_CONNECT_TIMEOUT``. The "host" is a real
listening socket on 127.0.0.1 whose accept queue is full, so the kernel drops new SYNs; each
call runs in a fresh process with REDIS_URL pointing at it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CALLS = """
import json, time
import django
django.setup()
from asgiref.sync import async_to_sync
from celery import current_app
from channels.layers import get_channel_layer
from django.core.cache import cache
from recognition.analyses.services import ANALYSE_TASK, enqueue_analysis

calls = {
    "send the task": lambda: current_app.tasks[ANALYSE_TASK].delay(1),
    "enqueue_analysis (the upload's call)": lambda: enqueue_analysis(1),
    "cache": lambda: cache.get("x"),
    "channel layer": lambda: async_to_sync(get_channel_layer().group_send)("g", {"type": "x"}),
}
out = {}
for name, call in calls.items():
    started = time.monotonic()
    try:
        call()
        outcome = "returned"
    except Exception as exc:
        outcome = type(exc).__name__
    out[name] = [round(time.monotonic() - started, 2), outcome]
print("RESULT=" + json.dumps(out))
"""


@pytest.fixture
def unanswering_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    held = socket.create_connection(("127.0.0.1", port), timeout=2)  # fills the accept queue
    probe = socket.socket()
    probe.settimeout(1.0)
    with pytest.raises(TimeoutError):  # the kernel now drops SYNs: connecting hangs
        probe.connect(("127.0.0.1", port))
    probe.close()
    yield port
    held.close()
    server.close()


def test_every_redis_client_gives_up_in_seconds(unanswering_port, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "emotionsite.settings", "DATA_DIR": str(tmp_path),
        "REDIS_URL": f"redis://127.0.0.1:{unanswering_port}/0", "REDIS_CONNECT_TIMEOUT": "1",
    })  # fmt: skip
    done = subprocess.run([sys.executable, "-c", CALLS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=170, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT="))[7:])
    print(result)
    for name, (seconds, outcome) in result.items():
        assert seconds < 12, f"{name}: {seconds} s against a Redis that does not answer"
    assert result["send the task"][1] != "returned"  # it failed, and said so
    assert result["enqueue_analysis (the upload's call)"][1] == "returned"  # logged, left queued
