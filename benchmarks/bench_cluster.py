"""Load with faults on the multi-host layout: people uploading and live webcams at once, while a
worker is SIGKILLed and restarted and Redis restarts once.

    .venv/bin/python -m benchmarks.bench_cluster [--users 4] [--clients 2] [--seconds 120]

Starts, on this machine, what separate hosts would run (tests/cluster.py): one daphne web server
and two Celery workers (the second runs the beat), each with its own MEDIA_ROOT, sharing only a
fresh PostgreSQL database (created on 127.0.0.1:5432 and dropped at the end; --database-url to
use another server), a private redis-server on a free port, and a bucket on moto's S3 server
(python -m moto.server). Then ``--users`` people upload in turn a photo, a recording, a group
photo, another recording and a 2 s video (one upload, then ``--think`` seconds, again) and
``--clients`` live clients stream webcam frames at 10 fps for ``--seconds``; worker 0 is killed
at 30% of the time (back 3 s later), Redis stops at 60% (back --redis-down s later, empty). It waits for the
accepted uploads to finish and prints the table of tests/loadfaults.py: submitted / accepted /
refused (with reasons) / done / failed (with reasons) / stuck, job latency p50/p95 (accepted ->
done, from the database), live round trip p50/p95, orphaned objects, and what broke first.
Exits 1 when anything was lost.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests import cluster, loadfaults
from tests.objectstore import S3Server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=4, help="people uploading")
    parser.add_argument("--clients", type=int, default=2, help="live webcam clients")
    parser.add_argument("--seconds", type=float, default=120, help="length of the load")
    parser.add_argument("--think", type=float, default=2.0, help="seconds between one person's uploads")
    parser.add_argument("--drain", type=float, default=180, help="seconds to wait for the jobs after the load")
    parser.add_argument("--redis-down", type=float, default=3.0, help="seconds Redis stays down")
    parser.add_argument("--no-faults", action="store_true", help="the same load without the kill and the restart")
    parser.add_argument("--database-url", default="", help="an existing, migrated database (default: a fresh one)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    server = "postgres://postgres@127.0.0.1:5432"
    name = f"emotionsite_bench_{os.getpid()}"
    database_url = args.database_url or f"{server}/{name}"
    s3 = S3Server(work)
    redis = cluster.RedisServer(work)
    group = None
    try:
        if not args.database_url:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        s3.start()
        redis.start()
        group = cluster.Cluster(work / "hosts", database_url=database_url, redis_url=redis.url, s3=s3,
                                secret_key=secrets.token_urlsafe(50), LOG_LEVEL="WARNING",
                                **loadfaults.FAST_RECOVERY)  # fmt: skip
        if not args.database_url:
            group.manage("migrate", "--noinput")
        load = os.getloadavg()
        report = loadfaults.run_load(group, redis, users=args.users, clients=args.clients, seconds=args.seconds,
                                     think=args.think, drain=args.drain, faults=not args.no_faults,
                                     redis_down=args.redis_down)  # fmt: skip
        print(f"load average at the start {load[0]:.1f}; {os.cpu_count()} CPU cores")
        print(loadfaults.table(report))
        return 0 if report.nothing_lost() else 1
    finally:
        if group is not None:
            group.stop()
        if redis.proc is not None:
            redis.stop()
        s3.stop()
        if not args.database_url:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
