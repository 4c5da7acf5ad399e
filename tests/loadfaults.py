"""Load with faults on the separate-host layout of tests/cluster.py: N people uploading photos,
recordings and videos and M live webcam clients at once for a fixed time, while one Celery worker
is SIGKILLed and started again and Redis (broker, results, cache, channel layer) restarts once,
losing everything it held. Then the books are balanced: every accepted upload must end done, or
failed with a reason; nothing stays queued or running; the bucket holds exactly the files of the
analyses that exist (no orphan, none missing).

``run_load`` drives it and returns the report; ``table`` prints it. Used by
tests/test_load_faults.py (short, in the suite) and benchmarks/bench_cluster.py (longer runs).
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg

from tests import cluster

MEDIA = Path(__file__).parent / "media"
# Tight recovery timings for a short run (the production defaults are minutes): a dead worker's
# message comes back after 5 s, a message Redis lost is sent again after 10 s queued.
FAST_RECOVERY = {
    "CELERY_VISIBILITY_TIMEOUT": "5", "REQUEUE_QUEUED_AFTER": "10", "REQUEUE_LOST_INTERVAL": "5",
    # A job running when its message is lost (worker killed, then Redis restarted) is sent again
    # CELERY_TASK_TIME_LIMIT + 60 s after it started (services.requeue_lost).
    "CELERY_TASK_SOFT_TIME_LIMIT": "15", "CELERY_TASK_TIME_LIMIT": "20",
}  # fmt: skip


@dataclass
class Report:
    users: int
    clients: int
    seconds: float
    submitted: int = 0
    accepted: list[int] = field(default_factory=list)
    refused: collections.Counter = field(default_factory=collections.Counter)
    done: int = 0
    failed: collections.Counter = field(default_factory=collections.Counter)
    stuck: list[tuple[int, str]] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds, accepted -> finished (done only)
    live_rtt: list[float] = field(default_factory=list)  # ms
    live_errors: collections.Counter = field(default_factory=collections.Counter)
    live_connections: int = 0
    orphans: list[str] = field(default_factory=list)
    absent_files: list[str] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)  # (seconds from start, what)
    drain_seconds: float = 0.0
    resent: int = 0  # analyses the beat sent again because their broker message was lost
    not_enqueued: int = 0  # uploads accepted while the broker was down (left queued for the beat)
    upload_seconds: list[float] = field(default_factory=list)  # the upload request itself

    def nothing_lost(self) -> bool:
        return not (self.stuck or self.missing or self.orphans or self.absent_files)

    def first_problem(self) -> str:
        problems = [e for e in self.events if not e[1].startswith("fault:")]
        return f"{problems[0][1]} at {problems[0][0]:.1f} s" if problems else "nothing"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class _Clock:
    def __init__(self, report: Report) -> None:
        self.start = time.monotonic()
        self.report = report
        self.lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.start

    def event(self, what: str) -> None:
        with self.lock:
            self.report.events.append((round(self.now(), 1), what))


def _uploads() -> list[tuple[bytes, str]]:
    from tests.video_media import make_video

    speech = sorted((MEDIA / "speech").glob("*.flac"))
    return [
        ((MEDIA / "test_image.jpg").read_bytes(), "photo.jpg"),
        (speech[0].read_bytes(), "voice-a.flac"),
        ((MEDIA / "12_angry_men.jpg").read_bytes(), "group.jpg"),
        (speech[1].read_bytes(), "voice-b.flac"),
        (make_video(seconds=2.0, size=(320, 240)), "clip.mp4"),
    ]


def _uploader(browser: cluster.Browser, items, stop: threading.Event, report: Report, clock: _Clock,
              think: float, offset: int) -> None:  # fmt: skip
    n = offset
    while not stop.is_set():
        data, name = items[n % len(items)]
        n += 1
        with clock.lock:
            report.submitted += 1
        sent = time.monotonic()
        try:
            answer = browser.upload(data, name)
            with clock.lock:
                report.upload_seconds.append(time.monotonic() - sent)
        except Exception as exc:  # noqa: BLE001 - a refused connection is a refusal with a reason
            reason = f"upload: {type(exc).__name__}"
        else:
            if answer.status_code == 201:
                with clock.lock:
                    report.accepted.append(cluster.first_id(answer))
                stop.wait(think)
                continue
            try:
                detail = answer.json().get("error") or answer.json()
                detail = detail.get("message", "") if isinstance(detail, dict) else str(detail)
            except ValueError:
                detail = answer.text[:60]
            reason = f"upload {answer.status_code}: {detail[:80]}"
        with clock.lock:
            report.refused[reason] += 1
        clock.event(reason)
        stop.wait(1.0)


async def _live_client(port: int, cookie: str, frames: list[bytes], until: float, report: Report,
                       clock: _Clock) -> None:  # fmt: skip
    """Stream until ``until`` (clock seconds); a socket that ends is reconnected, as the page does."""
    while clock.now() < until:
        report.live_connections += 1
        stats: dict = {}
        try:
            await cluster.live_frames(port, cookie, frames, seconds=until - clock.now(), save=False, fps=10,
                                      stats=stats)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the socket ended: count why, reconnect
            reason = f"live: {type(exc).__name__}"
            report.live_errors[reason] += 1
            clock.event(reason)
            await asyncio.sleep(0.5)
        finally:
            report.live_rtt.extend(stats.get("rtt", []))
            for error in stats.get("errors", []):
                report.live_errors[f"live reply: {error}"] += 1
                clock.event(f"live reply: {error}")


def _analyses(database_url: str, ids: list[int]) -> dict[int, dict]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, status, error, media, uid, owner_id, kind, created, finished "
            "FROM recognition_analysis WHERE id = ANY(%s)", (ids,),
        ).fetchall()  # fmt: skip
    keys = ("id", "status", "error", "media", "uid", "owner", "kind", "created", "finished")
    return {row[0]: dict(zip(keys, row, strict=True)) for row in rows}


def run_load(group: cluster.Cluster, redis: cluster.RedisServer, *, users: int, clients: int, seconds: float,
             think: float = 2.0, drain: float = 120.0, faults: bool = True, redis_down: float = 3.0) -> Report:  # fmt: skip
    """Start one web server and two workers (worker 1 runs the beat), load them for ``seconds``
    with the faults at 30% (worker 0 SIGKILLed, back 3 s later) and 60% (Redis down for
    ``redis_down`` s), then
    wait up to ``drain`` s for the accepted uploads to finish and balance the books."""
    report = Report(users, clients, seconds)
    web = group.start_web()
    workers = [group.start_worker(), group.start_worker(beat=True)]
    people = cluster.session_cookies(group, [f"load{i}" for i in range(users + clients)])
    names = list(people)
    probe = cluster.Browser(web.url, people[names[0]][1])
    cluster.wait("the web server's models", lambda: probe.http.get(f"{web.url}/readyz", timeout=30).status_code == 200, 240)
    items = _uploads()
    frames = cluster.live_jpegs()
    warm = [probe.upload(items[0][0], "warm-up.jpg")]  # every worker warm before the clock starts
    cluster.wait("a first job", lambda: probe.statuses([cluster.first_id(warm[0])]).get(
        cluster.first_id(warm[0]), {}).get("status") == "done", 240)  # fmt: skip

    clock = _Clock(report)
    stop = threading.Event()
    threads = [
        threading.Thread(target=_uploader, daemon=True,
                         args=(cluster.Browser(web.url, people[names[i]][1]), items, stop, report, clock, think, i))
        for i in range(users)
    ]  # fmt: skip

    def live_all() -> None:
        async def main() -> None:
            await asyncio.gather(*(_live_client(web.port, people[names[users + i]][1], frames, seconds, report, clock)
                                   for i in range(clients)))  # fmt: skip

        asyncio.run(main())

    threads.append(threading.Thread(target=live_all, daemon=True))
    for thread in threads:
        thread.start()
    if faults:
        time.sleep(max(0.0, 0.3 * seconds - clock.now()))
        group.kill_worker(workers[0])
        clock.event("fault: worker 0 SIGKILLed")
        time.sleep(3)
        workers[0] = group.start_worker(name="worker0b")
        clock.event("fault: worker 0 started again")
        time.sleep(max(0.0, 0.6 * seconds - clock.now()))
        redis.stop()
        clock.event("fault: Redis stopped (everything it held is lost)")
        time.sleep(redis_down)
        redis.start()
        clock.event("fault: Redis started again")
    time.sleep(max(0.0, seconds - clock.now()))
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    ended = time.monotonic()
    database_url = group.env["DATABASE_URL"]
    deadline = ended + drain
    rows = _analyses(database_url, report.accepted)
    while time.monotonic() < deadline:
        rows = _analyses(database_url, report.accepted)
        if all(r["status"] in ("done", "failed") for r in rows.values()):
            break
        time.sleep(1)
    report.drain_seconds = round(time.monotonic() - ended, 1)

    expected: set[str] = set()
    for pk in report.accepted:
        row = rows.get(pk)
        if row is None:
            report.missing.append(pk)
            continue
        if row["status"] == "done":
            report.done += 1
            report.latencies.append((row["finished"] - row["created"]).total_seconds())
        elif row["status"] == "failed":
            report.failed[(row["error"] or "no reason given")[:80]] += 1
            if not row["error"]:
                report.stuck.append((pk, "failed without a reason"))
        else:
            report.stuck.append((pk, row["status"]))
        if row["media"]:
            expected.add(row["media"])
        if row["kind"] == "image":
            expected.update(f"users/{row['owner']}/{row['uid'].hex}.{v}.jpg" for v in ("thumb", "preview"))
    load_users = {people[name][0] for name in names}
    stored = {k for k in group.keys("users/") if int(k.split("/")[1]) in load_users}
    warm_up = _analyses(database_url, [cluster.first_id(warm[0])])
    for row in warm_up.values():  # the warm-up upload is not part of the load
        stored -= {row["media"], *(f"users/{row['owner']}/{row['uid'].hex}.{v}.jpg" for v in ("thumb", "preview"))}
    logs = "".join(p.read_text(errors="replace") for p in group.dir.glob("worker*.log"))
    report.resent = logs.count("re-sending analysis")
    report.not_enqueued = sum(site.log_path.read_text(errors="replace").count("could not enqueue analysis")
                              for site in group.webs)  # fmt: skip
    report.orphans = sorted(stored - expected)
    report.absent_files = sorted(expected - stored)
    return report


def table(report: Report) -> str:
    lat, live = report.latencies, report.live_rtt
    lines = [
        (f"load: {report.users} uploading users, {report.clients} live clients, {report.seconds:.0f} s; "
         f"drained in {report.drain_seconds:.0f} s"),
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| uploads submitted | {report.submitted} |",
        f"| accepted (201) | {len(report.accepted)} |",
        f"| refused | {sum(report.refused.values())} {dict(report.refused) or ''} |",
        f"| done | {report.done} |",
        f"| failed (with reason) | {sum(report.failed.values())} {dict(report.failed) or ''} |",
        f"| stuck (queued/running after the drain) | {len(report.stuck)} {report.stuck[:5] or ''} |",
        f"| lost (accepted, no record) | {len(report.missing)} |",
        (f"| accepted while the broker was down (left queued) / sent again by the beat | "
         f"{report.not_enqueued} / {report.resent} |"),
        (f"| upload request p50 / p95 / max | {pct(report.upload_seconds, 50):.2f} s / "
         f"{pct(report.upload_seconds, 95):.2f} s / {max(report.upload_seconds, default=float('nan')):.2f} s |"),
        f"| job latency p50 / p95 (accepted -> done) | {pct(lat, 50):.2f} s / {pct(lat, 95):.2f} s |",
        (f"| live frames answered | {len(live)} ({len(live) / max(report.seconds, 1):.1f}/s in total; "
         f"{report.clients} clients asking 10/s each) |"),
        f"| live round trip p50 / p95 | {pct(live, 50):.0f} ms / {pct(live, 95):.0f} ms |",
        (f"| live sockets opened / errors | {report.live_connections} / {sum(report.live_errors.values())} "
         f"{dict(report.live_errors) or ''} |"),
        f"| objects orphaned in the bucket / files missing | {len(report.orphans)} / {len(report.absent_files)} |",
        f"| nothing lost | {'yes' if report.nothing_lost() else 'NO'} |",
        f"| what broke first | {report.first_problem()} |",
        "",
        "events: " + "; ".join(f"{t:.1f} s {what}" for t, what in report.events[:12]),
    ]
    if lat:
        lines.append(f"job latency max {max(lat):.2f} s, mean {statistics.mean(lat):.2f} s")
    return "\n".join(lines)
