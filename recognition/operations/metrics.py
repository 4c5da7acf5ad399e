"""Prometheus metrics (prometheus-client): definitions, the helpers that record them, exposition.

Everything is recorded through the functions here, each called from one place:

- HTTP: ``observe_request`` from ``observability.RequestMiddleware``; the route label is the URL
  pattern (``analyses/<int:pk>/``), never the raw path, so the label set stays bounded.
- analyses: ``count_analysis`` from ``services`` (status changes, after commit) and
  ``live.save_live_session``;
- inference: ``observe_inference`` from the inference module (``faces.analyze_image``,
  ``video.analyze_video``, ``voice.analyze_audio`` / ``voice.analyse_signal``), which pages, API,
  workers and the live socket all go through; warm-up runs inside ``not_recorded()``;
- live: ``live_*`` from ``live`` and the live consumer;
- storage: ``count_storage_error`` from ``analyses.media`` and the readiness check;
- Celery: ``observability``'s task signal handlers (durations by final state, retries,
  failures), in the web process (eager tasks) and in workers.

Processes: without ``PROMETHEUS_MULTIPROC_DIR`` each process keeps its own values (daphne is one
process). With it, every process writes its values under that folder and an exposition
aggregates all of them: prefork Celery workers need it (the pool children run the tasks), and
``emotionsite/celery.py`` creates a private one when ``WORKER_METRICS_PORT`` is set without it.

State that is read at scrape time (queue depth, unfinished analyses) is a collector of the web
process's ``/metrics`` only (``state_registry``), so it is never multiplied by processes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger("recognition.metrics")  # the name the logs have always shown

PREFIX = "emotionsite"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
INFERENCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)
TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

HTTP_REQUESTS = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests answered, by URL pattern, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time from the request reaching Django to the response leaving it, by URL pattern and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
ANALYSES = Counter(
    f"{PREFIX}_analyses",
    "Analyses entering a status (queued, running, done, failed), by kind (image, audio, video, live).",
    ["kind", "status"],
)
INFERENCE = Histogram(
    f"{PREFIX}_inference_seconds",
    "Inference time per served model and stage (decode, detect, classify; features for voice).",
    ["model", "stage"],
    buckets=INFERENCE_BUCKETS,
)
LIVE_SESSIONS = Gauge(
    f"{PREFIX}_live_sessions",
    "Live websocket sessions open now.",
    multiprocess_mode="livesum",
)
LIVE_SESSIONS_STARTED = Counter(
    f"{PREFIX}_live_sessions_started", "Live sessions started (a stop and a new start count twice)."
)
LIVE_FRAMES = Counter(
    f"{PREFIX}_live_frames",
    "Live webcam frames by outcome: analysed, dropped (a newer frame replaced it), failed.",
    ["outcome"],
)
LIVE_AUDIO = Counter(
    f"{PREFIX}_live_audio_chunks",
    "Live microphone chunks by outcome: analysed, dropped, failed.",
    ["outcome"],
)
TASK_DURATION = Histogram(
    f"{PREFIX}_celery_task_duration_seconds",
    "Celery task run time by task and final state (SUCCESS, FAILURE, RETRY).",
    ["task", "state"],
    buckets=TASK_BUCKETS,
)
TASK_RETRIES = Counter(f"{PREFIX}_celery_task_retries", "Celery task retries, by task.", ["task"])
TASK_FAILURES = Counter(
    f"{PREFIX}_celery_task_failures", "Celery tasks that ended in an exception, by task.", ["task"]
)

STORAGE_OPERATIONS = ("save", "read", "delete", "list", "check")
STORAGE_ERRORS = Counter(
    f"{PREFIX}_storage_errors",
    "Media storage calls (file system or object store) that failed, by operation.",
    ["operation"],
)
for _operation in STORAGE_OPERATIONS:  # every series present from the start (0), so rate() works
    STORAGE_ERRORS.labels(_operation)

_recording: ContextVar[bool] = ContextVar("metrics_recording", default=True)


@contextlib.contextmanager
def not_recorded() -> Iterator[None]:
    """Inference run inside (model warm-up on blank input) is not measured."""
    token = _recording.set(False)
    try:
        yield
    finally:
        _recording.reset(token)


# --- recording ------------------------------------------------------------------------------


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "other"
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_LATENCY.labels(route, method).observe(seconds)


def count_analysis(kind: str, status: str) -> None:
    ANALYSES.labels(kind, status).inc()


# Timing keys of the inference results (milliseconds) -> stage label.
STAGES = {"decode_ms": "decode", "detect_ms": "detect", "classify_ms": "classify", "features_ms": "features"}


def observe_inference(model: str, timings_ms: Mapping[str, float], *, only: tuple[str, ...] | None = None) -> None:
    """One observation per stage found in an inference result's ``timings`` (milliseconds)."""
    if not _recording.get():
        return
    for key, stage in STAGES.items():
        if key in timings_ms and (only is None or stage in only):
            try:
                INFERENCE.labels(model or "unknown", stage).observe(max(0.0, float(timings_ms[key])) / 1000)
            except (TypeError, ValueError):
                continue


def live_session_opened() -> None:
    LIVE_SESSIONS.inc()


def live_session_closed() -> None:
    LIVE_SESSIONS.dec()


def live_session_started() -> None:
    LIVE_SESSIONS_STARTED.inc()


def live_frame(outcome: str) -> None:
    LIVE_FRAMES.labels(outcome).inc()


def live_audio(outcome: str) -> None:
    LIVE_AUDIO.labels(outcome).inc()


def observe_task(task: str, state: str, seconds: float) -> None:
    TASK_DURATION.labels(task, state or "unknown").observe(seconds)


def count_retry(task: str) -> None:
    TASK_RETRIES.labels(task).inc()


def count_failure(task: str) -> None:
    TASK_FAILURES.labels(task).inc()


def count_storage_error(operation: str) -> None:
    """A media storage call failed (``analyses.media``, the readiness check)."""
    STORAGE_ERRORS.labels(operation if operation in STORAGE_OPERATIONS else "other").inc()


# --- state read at scrape time (web process only) -----------------------------------------------


# (kind, status, count) of the analyses queued or running now: set by the analyses app when it is
# ready (``recognition.analyses.selectors.unfinished_counts``), so operations imports no app.
unfinished_source: Callable[[], Iterable[tuple[str, str, int]]] | None = None


class StateCollector:
    """Queue depth in the broker and unfinished analyses in the database, read per scrape with
    short time bounds; a dependency that does not answer is reported as down, never raised."""

    def collect(self):
        from django.conf import settings

        up = GaugeMetricFamily(
            f"{PREFIX}_scrape_dependency_up",
            "Whether a dependency answered the scrape's state queries (1) or not (0).",
            labels=["dependency"],
        )
        depth = GaugeMetricFamily(
            f"{PREFIX}_queue_depth",
            "Messages waiting in the Celery broker queue (0 on the embedded default: tasks run in the request).",
            labels=["queue"],
        )
        queue = str(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"))
        url = getattr(settings, "REDIS_URL", "")
        if not url:
            depth.add_metric([queue], 0)
        else:
            try:
                import redis

                client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
                try:
                    depth.add_metric([queue], float(client.llen(queue)))
                finally:
                    client.close()
                up.add_metric(["redis"], 1)
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail with Redis down
                logger.warning("metrics: queue depth unavailable (%s)", type(exc).__name__)
                up.add_metric(["redis"], 0)
        yield depth

        unfinished = GaugeMetricFamily(
            f"{PREFIX}_analyses_unfinished",
            "Analyses queued or running now (database), by kind and status.",
            labels=["kind", "status"],
        )
        try:
            counts = {(k, s): 0 for k in ("image", "audio", "video") for s in ("queued", "running")}
            rows = unfinished_source() if unfinished_source is not None else []
            for kind, status, n in rows:
                counts[(kind, status)] = n
            for (kind, status), n in sorted(counts.items()):
                unfinished.add_metric([kind, status], n)
            up.add_metric(["database"], 1)
            yield unfinished
        except Exception as exc:  # noqa: BLE001
            logger.warning("metrics: unfinished analyses unavailable (%s)", type(exc).__name__)
            up.add_metric(["database"], 0)
        yield up


state_registry = CollectorRegistry(auto_describe=False)
state_registry.register(StateCollector())


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


def process_registry() -> CollectorRegistry:
    """This process's metrics, or every process's when PROMETHEUS_MULTIPROC_DIR is set."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def exposition(*, with_state: bool) -> tuple[bytes, str]:
    """The text exposition (and its content type) of this process's metrics (all processes' in
    multi-process mode), plus the scrape-time state when ``with_state``."""
    body = generate_latest(process_registry())
    if with_state:
        body += generate_latest(state_registry)
    return body, CONTENT_TYPE_LATEST


# --- who may scrape -------------------------------------------------------------------------------


def _networks(entries: list[str] | tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for entry in entries:
        entry = entry.strip()
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                logger.warning("METRICS_ALLOWED_IPS: ignoring an entry that is not an address or network")
    return networks


def scrape_allowed(*, remote_addr: str | None, authorization: str | None, token: str, allowed_ips) -> bool:
    """True when the bearer token matches ``token`` (compared in constant time) or the client
    address is in one of ``allowed_ips``; with neither configured, nobody may scrape."""
    import hmac

    if token and authorization:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    if remote_addr:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return False
        return any(address in network for network in _networks(list(allowed_ips or ())))
    return False
