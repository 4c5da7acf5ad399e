"""End-to-end latency of ``POST /api/v1/analyses/?wait=30`` with a real Celery worker on Redis.

    .venv/bin/python benchmarks/bench_api.py [--repeats 10] [--redis redis://127.0.0.1:6379]

Starts, in a scratch folder: a SQLite database (migrated), a Celery worker (prefork, 1 process)
and the site under daphne, both with ``REDIS_URL`` set (an empty Redis database is chosen), then
uploads a real photo (tests/media/test_image.jpg) and a 5.0 s speech clip (two RAVDESS clips
joined, FLAC) through the HTTP API. Prints one table: p50/p90 of the API round trip against the
baseline measured in the same run, the same inference called in-process on the same bytes;
the difference is what the API, the queue, the worker and the database add. Everything it
started is stopped at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks._common import percentile, timed
from tests.livesite import free_port

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "clients" / "python"))  # the API client is a standalone script
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from emotionsite_client import Client, encode_multipart

VENV = REPO / ".venv" / "bin"
PHOTO = REPO / "tests" / "media" / "test_image.jpg"
SPEECH = REPO / "tests" / "media" / "speech"
CLIPS = ("03-01-05-02-01-01-18.flac", "03-01-03-02-02-01-17.flac")


def five_second_clip() -> bytes:
    """5.0 s of real speech at 16 kHz: two clips joined, cut to length, as FLAC."""
    import numpy as np
    import soundfile

    parts = [soundfile.read(SPEECH / name, dtype="float32")[0] for name in CLIPS]
    signal = np.concatenate(parts)[: 5 * 16000]
    assert len(signal) == 5 * 16000, "the clips are too short for 5 s"
    buf = io.BytesIO()
    soundfile.write(buf, signal, 16000, format="FLAC")
    return buf.getvalue()


def empty_redis_db(base: str) -> str:
    """A Redis URL on a database number with no keys, so the run shares nothing with others."""
    import redis

    for db in range(8, 15):
        if redis.Redis.from_url(f"{base}/{db}").dbsize() == 0:
            return f"{base}/{db}"
    raise SystemExit("no empty Redis database among 8-14")


def in_process_baseline(data: dict[str, bytes], repeats: int) -> dict[str, list[float]]:
    """The inference alone, in this process, on the same bytes (after a warm-up call)."""
    from recognition.inference import faces, voice

    analyse = {"photo": faces.analyze_image, "clip": voice.analyze_audio}
    times = {}
    for kind, payload in data.items():
        analyse[kind](payload)
        times[kind] = timed(lambda: analyse[kind](payload), repeats)  # noqa: B023 - called at once
    return times


def wait_for_http(url: str, seconds: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer in {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="timed uploads per input (default %(default)s)",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379",
        help="Redis server (a free db is picked)",
    )
    parser.add_argument(
        "--inputs",
        default="photo,clip",
        help="which of photo,clip to time (default %(default)s)",
    )
    args = parser.parse_args()

    inputs = [k for k in ("photo", "clip") if k in args.inputs.split(",")]
    everything = {
        "photo": (PHOTO.name, PHOTO.read_bytes()),
        "clip": ("clip.flac", five_second_clip()),
    }
    data = {k: everything[k][1] for k in inputs}
    print(f"baseline: in-process inference, {args.repeats} runs each ...", flush=True)
    baseline = in_process_baseline(data, args.repeats)

    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench_api_") as tmp:
        redis_url = empty_redis_db(args.redis)
        env = {
            **os.environ,
            "DATA_DIR": f"{tmp}/data",
            "MEDIA_ROOT": f"{tmp}/media",
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "REDIS_URL": redis_url,
            "DEBUG": "False",
            "HTTPS": "False",
            "LOG_LEVEL": "WARNING",
            "API_THROTTLE_UPLOADS": "10000/min",
            "API_THROTTLE_USER": "10000/min",
        }
        subprocess.run(
            [VENV / "python", "manage.py", "migrate", "-v", "0"],
            cwd=REPO,
            env=env,
            check=True,
        )
        make_token = (
            "from django.contrib.auth import get_user_model;"
            "from rest_framework.authtoken.models import Token;"
            "u = get_user_model().objects.create_user('bench', password='bench-password-1');"
            "print(Token.objects.create(user=u).key)"
        )
        token = subprocess.run(
            [VENV / "python", "manage.py", "shell", "-c", make_token],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]  # the last word: shell may print a banner first
        port = free_port()
        try:
            logs = open(f"{tmp}/processes.log", "w")  # noqa: SIM115 - closed with the folder
            procs.append(
                subprocess.Popen(
                    [
                        VENV / "celery",
                        "-A",
                        "emotionsite",
                        "worker",
                        "-c",
                        "1",
                        "-l",
                        "warning",
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=logs,
                    stderr=subprocess.STDOUT,
                )
            )
            procs.append(
                subprocess.Popen(
                    [
                        VENV / "daphne",
                        "-b",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "emotionsite.asgi:application",
                    ],
                    cwd=REPO,
                    env=env,
                    stdout=logs,
                    stderr=subprocess.STDOUT,
                )
            )
            wait_for_http(f"http://127.0.0.1:{port}/api/schema/", 60, procs[-1])
            client = Client(f"http://127.0.0.1:{port}", token=token)

            def post(name: str, data: bytes) -> None:
                body, content_type = encode_multipart("file", name, data)
                status, analysis = client.request(
                    "POST",
                    "analyses/",
                    body=body,
                    content_type=content_type,
                    params={"wait": 30},
                )
                if status != 201 or analysis["status"] != "done":
                    raise SystemExit(
                        f"{name}: {status} {analysis['status']} {analysis.get('error')}"
                    )

            print(
                f"API: warm-up (the worker loads the models), then {args.repeats} uploads each ...",
                flush=True,
            )
            for (
                kind
            ) in inputs:  # untimed; loading TensorFlow can take longer than one ?wait
                warm = Path(tmp) / everything[kind][0]
                warm.write_bytes(data[kind])
                if client.analyse(warm, wait=300)["status"] != "done":
                    raise SystemExit(f"warm-up {warm.name} did not finish")
            api = {
                k: timed(lambda k=k: post(everything[k][0], data[k]), args.repeats)
                for k in inputs
            }
        except BaseException:
            logs.flush()
            print(Path(f"{tmp}/processes.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            import redis

            redis.Redis.from_url(
                redis_url
            ).flushdb()  # only the database this run picked as empty

    labels = {
        "photo": f"photo {PHOTO.name} ({len(everything['photo'][1]) // 1024} KiB)",
        "clip": "speech clip, 5.0 s FLAC",
    }
    print(
        f"\nPOST /api/v1/analyses/?wait=30, real Celery worker on Redis, {args.repeats} runs (ms)"
    )
    header = ("input", "in-process p50", "API p50", "API p90", "API adds (p50)")
    rows = [
        (
            labels[k],
            f"{statistics.median(baseline[k]):.0f}",
            f"{statistics.median(api[k]):.0f}",
            f"{percentile(api[k], 0.9):.0f}",
            f"{statistics.median(api[k]) - statistics.median(baseline[k]):+.0f}",
        )
        for k in inputs
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(row, widths))
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
