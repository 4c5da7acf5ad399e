"""Load with faults, short: people uploading and live clients at once on the separate-host layout
(tests/cluster.py: web and workers on different MEDIA_ROOT folders, the bucket on a real S3 server)
while a worker is SIGKILLed and restarted and Redis restarts once. Nothing may be lost: every
accepted upload ends done or failed with a reason, nothing stays queued or running, the bucket
holds exactly the files of the analyses. benchmarks/bench_cluster.py runs it longer.
"""

from __future__ import annotations

import pytest
from django.db import connection

from tests import cluster, loadfaults
from tests.test_tasks_worker import database_url

pytestmark = [pytest.mark.services, pytest.mark.fault, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_uploads_and_live_under_a_worker_kill_and_a_redis_restart_lose_nothing(tmp_path, s3_server, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the processes share the PostgreSQL test database (./scripts/test)")
    redis = cluster.RedisServer(tmp_path)
    redis.start()
    group = cluster.Cluster(tmp_path / "hosts", database_url=database_url(), redis_url=redis.url, s3=s3_server,
                            secret_key=settings.SECRET_KEY, **loadfaults.FAST_RECOVERY)  # fmt: skip
    try:
        report = loadfaults.run_load(group, redis, users=3, clients=2, seconds=40, think=2.0, drain=90)
    finally:
        group.stop()
        redis.stop()
    print(loadfaults.table(report))
    print(group.logs(1500))
    assert report.submitted >= 20 and len(report.accepted) >= 15, loadfaults.table(report)
    assert report.nothing_lost(), loadfaults.table(report)
    assert report.done >= 0.8 * len(report.accepted), loadfaults.table(report)
    assert len(report.live_rtt) >= 100, loadfaults.table(report)  # live kept working around the faults
    assert [e for _, e in report.events if e.startswith("fault:")] == [
        "fault: worker 0 SIGKILLed", "fault: worker 0 started again",
        "fault: Redis stopped (everything it held is lost)", "fault: Redis started again",
    ]
