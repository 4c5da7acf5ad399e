"""Throughput: analyses per minute with one and two real Celery workers, photos and speech clips.

    .venv/bin/python -m benchmarks.bench_throughput [--jobs 16] [--workers 1,2]
        [--postgres postgres://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379]

Sets up, in a scratch folder: a fresh PostgreSQL database (created and dropped by the run; SQLite
when PostgreSQL is not reachable), an empty Redis database and a private queue, so nothing is
shared with other work. Uploads go through ``services.create_analysis`` (sniffing, limits,
storage: what the page and the API do) without being sent; then the clock starts, all ``--jobs``
of one kind are sent at once and the clock stops when the last one is done. Workers are real
``celery worker`` processes (prefork, 1 process each, the production settings), warmed up first
so loading TensorFlow and the models is not timed.

Baseline, in the same run: the same analyses run one after another in this process
(``services.run_analysis``, no queue, no worker), the most one process can do; the table shows
what the queue costs and what a second worker adds. Printed: one table (analyses per minute,
mean seconds per analysis seen from the queue) and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.bench_api import empty_redis_db

PHOTO = REPO / "tests" / "media" / "test_image.jpg"
CLIPS = sorted((REPO / "tests" / "media" / "speech").glob("*.flac"))
KINDS = {
    "photo": f"photo {PHOTO.name} (2048x1536, 6 faces)",
    "clip": f"speech clip (RAVDESS FLAC, 3-4 s, {len(CLIPS)} different)",
}


def inputs(kind: str, n: int) -> list[tuple[str, bytes]]:
    if kind == "photo":
        return [(PHOTO.name, PHOTO.read_bytes())] * n
    return [
        (CLIPS[i % len(CLIPS)].name, CLIPS[i % len(CLIPS)].read_bytes())
        for i in range(n)
    ]


def scratch_database(postgres: str, tmp: str) -> tuple[str, str | None]:
    """(DATABASE_URL, name to drop): a new PostgreSQL database, else a SQLite file."""
    try:
        import psycopg

        name = f"bench_throughput_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(
            f"{postgres}/postgres", autocommit=True, connect_timeout=3
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"{postgres}/{name}", name
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL here: SQLite still works
        print(
            f"PostgreSQL unavailable ({exc}); using SQLite (concurrent writers wait for locks)"
        )
        return f"sqlite:///{tmp}/bench.sqlite3", None


def drop_database(postgres: str, name: str | None) -> None:
    if name is None:
        return
    import psycopg

    with psycopg.connect(f"{postgres}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_done(ids: list[int], timeout: float) -> float:
    """Seconds until every analysis is done or failed (raises past ``timeout``)."""
    from recognition.analyses.models import Analysis

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        left = (
            Analysis.objects.filter(pk__in=ids)
            .exclude(status__in=("done", "failed"))
            .count()
        )
        if left == 0:
            failed = list(
                Analysis.objects.filter(pk__in=ids, status="failed").values_list(
                    "error", flat=True
                )
            )
            if failed:
                raise SystemExit(f"{len(failed)} analyses failed: {failed[:3]}")
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise SystemExit(f"analyses still unfinished after {timeout:.0f} s")


def stored(owner, kind: str, n: int) -> list[int]:
    """``n`` uploads of ``kind`` checked and stored as the site does, not yet sent."""
    from recognition.analyses import services

    return [services.create_analysis(owner=owner, upload=data, filename=name, enqueue=False).pk
            for name, data in inputs(kind, n)]  # fmt: skip


def in_process(owner, kind: str, n: int) -> float:
    """Analyses per minute run one after another in this process (after one warm-up)."""
    from recognition.analyses import services

    warm, *ids = stored(owner, kind, n + 1)
    services.run_analysis(analysis_id=warm)
    t0 = time.perf_counter()
    for pk in ids:
        services.run_analysis(analysis_id=pk)
    return n / (time.perf_counter() - t0) * 60


def send(ids: list[int]) -> list[int]:
    """Send stored analyses to the workers, as the upload does once its transaction commits."""
    from recognition.analyses import services

    for pk in ids:
        services.enqueue_analysis(pk)
    return ids


def through_workers(owner, kind: str, n: int) -> float:
    """Analyses per minute when ``n`` stored uploads are sent at once to the running workers."""
    ids = stored(owner, kind, n)
    t0 = time.perf_counter()
    wait_done(send(ids), timeout=60 + 30 * n)
    return n / (time.perf_counter() - t0) * 60


def start_workers(count: int, env: dict[str, str], log: Path) -> list[subprocess.Popen]:
    handle = open(log, "ab")  # noqa: SIM115 - lives as long as the workers
    command = [sys.executable, "-m", "celery", "-A", "emotionsite", "worker", "-P", "prefork", "-c", "1",
               "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    return [
        subprocess.Popen(
            [*command, "-n", f"bench{i}@%h"],
            cwd=REPO,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        for i in range(count)
    ]


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--jobs",
        type=int,
        default=16,
        help="timed analyses per kind and setup (default %(default)s)",
    )
    parser.add_argument(
        "--workers", default="1,2", help="worker counts to time (default %(default)s)"
    )
    parser.add_argument(
        "--kinds", default="photo,clip", help="photo,clip (default %(default)s)"
    )
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379",
        help="Redis server (a free db is picked)",
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    kinds = [k for k in KINDS if k in args.kinds.split(",")]
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench_throughput_") as tmp:
        database_url, db_name = scratch_database(args.postgres, tmp)
        redis_url = empty_redis_db(args.redis)
        env = {**os.environ, "DATA_DIR": f"{tmp}/data", "MEDIA_ROOT": f"{tmp}/media", "DATABASE_URL": database_url,
               "REDIS_URL": redis_url, "CELERY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}", "DEBUG": "False",
               "HTTPS": "False", "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "emotionsite.settings"}  # fmt: skip
        try:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "-v", "0"],
                cwd=REPO,
                env=env,
                check=True,
            )
            os.environ.update(
                env
            )  # this process enqueues and reads results like the web process
            import django

            django.setup()
            from django.contrib.auth import get_user_model

            owner = get_user_model().objects.create_user(
                "bench", password="bench-password-1"
            )
            results: dict[tuple[str, str], float] = {}
            for kind in kinds:
                print(f"in-process baseline: {args.jobs} x {kind} ...", flush=True)
                results[(kind, "in-process")] = in_process(owner, kind, args.jobs)
            for count in counts:
                procs = start_workers(count, env, Path(tmp) / "workers.log")
                try:
                    print(
                        f"{count} worker(s): warm-up (loading TensorFlow and the models) ...",
                        flush=True,
                    )
                    for kind in kinds:
                        wait_done(send(stored(owner, kind, 2 * count)), timeout=600)
                    for kind in kinds:
                        print(
                            f"{count} worker(s): {args.jobs} x {kind} ...", flush=True
                        )
                        results[(kind, f"{count}w")] = through_workers(
                            owner, kind, args.jobs
                        )
                finally:
                    stop(procs)
        except BaseException:
            log = Path(tmp) / "workers.log"
            if log.exists():
                print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            from django.db import connections

            connections.close_all()
            drop_database(args.postgres, db_name)
            import redis

            redis.Redis.from_url(
                redis_url
            ).flushdb()  # only the database this run picked as empty

    load_after = os.getloadavg()
    print(f"\nAnalyses per minute ({args.jobs} per cell, sent at once; {os.cpu_count()} CPU cores; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after)")  # fmt: skip
    header = [
        "input",
        "in-process, no queue (baseline)",
        *[f"{c} worker{'s' if c > 1 else ''}" for c in counts],
    ]
    if len(counts) > 1:
        header.append(f"{counts[-1]} vs {counts[0]} workers")
    rows = []
    for kind in kinds:
        row = [KINDS[kind], f"{results[(kind, 'in-process')]:.1f}"]
        row += [
            f"{results[(kind, f'{c}w')]:.1f} ({60 / results[(kind, f'{c}w')]:.2f} s each)"
            for c in counts
        ]
        if len(counts) > 1:
            row.append(
                f"{results[(kind, f'{counts[-1]}w')] / results[(kind, f'{counts[0]}w')]:.2f}x"
            )
        rows.append(row)
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
