"""Request ids, HTTP metrics and Celery task metrics: the glue between Django/Celery and
``recognition.logs`` / ``recognition.metrics``.

- ``RequestMiddleware`` (first in ``MIDDLEWARE``): gives each request its id (``X-Request-ID`` in
  and out), times it, counts it by URL pattern and logs one line per request (probes at DEBUG).
- Celery signal handlers (connected in ``emotionsite/celery.py``): the sending process puts the
  request id into the task message's headers; the worker sets it (and the task id) for the
  task's log lines, measures the task and counts retries and failures.
- ``start_worker_endpoint``: a worker's own ``/metrics`` on ``WORKER_METRICS_PORT`` (same access
  rule as the web's), serving every pool process's values (multi-process mode).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from recognition.operations import logs, metrics

logger = logging.getLogger("recognition.request")
task_logger = logging.getLogger("recognition.task")

QUIET_ROUTES = {"/healthz", "/readyz", "/metrics"}  # probes and scrapes: logged at DEBUG


def route_of(request: HttpRequest) -> str:
    """The URL pattern that answered, from the root (``/api/v1/analyses/<int:pk>/``; ``/`` for
    the home page): bounded label values. ``static`` and ``unmatched`` otherwise."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return "/" + (match.route or "")
    from django.conf import settings

    static = "/" + str(settings.STATIC_URL).lstrip("/")
    return "static" if request.path.startswith(static) else "unmatched"


class RequestMiddleware:
    """Request id, HTTP metrics and one log line per request (route, not path: paths can carry
    tokens, e.g. password-reset links)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = logs.new_request_id(request.headers.get("X-Request-ID"))
        request.request_id = rid
        token = logs.request_id.set(rid)
        start = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - start
            route = route_of(request)
            metrics.observe_request(route, request.method or "", response.status_code, seconds)
            response["X-Request-ID"] = rid
            logger.log(
                logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                "%s %s %s %.1f ms",
                request.method,
                route,
                response.status_code,
                seconds * 1000,
                extra={
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
            return response
        finally:
            logs.request_id.reset(token)


# --- Celery ----------------------------------------------------------------------------------

_started: dict[str, tuple[float, Any, Any]] = {}
_started_lock = threading.Lock()


def _task_request_id(task: Any) -> str | None:
    request = getattr(task, "request", None)
    if request is None:
        return None
    value = getattr(request, "request_id", None)
    if not value:
        value = (getattr(request, "headers", None) or {}).get("request_id")
    return value if isinstance(value, str) else None


def on_before_task_publish(headers: dict | None = None, **_: Any) -> None:
    """The sending side: the current request id rides in the message headers."""
    rid = logs.request_id.get()
    if rid and headers is not None and not headers.get("request_id"):
        headers["request_id"] = rid


def on_task_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    name = getattr(task, "name", "unknown")
    rid = _task_request_id(task) or logs.request_id.get()
    rid_token = logs.request_id.set(rid)
    task_token = logs.task.set((task_id or "", name))
    with _started_lock:
        _started[task_id or ""] = (time.perf_counter(), rid_token, task_token)
    task_logger.info("task %s[%s] started request_id=%s", name, task_id, rid or "-")


def on_task_postrun(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    name = getattr(task, "name", "unknown")
    with _started_lock:
        started = _started.pop(task_id or "", None)
    if started is None:
        return
    seconds = time.perf_counter() - started[0]
    metrics.observe_task(name, state or "unknown", seconds)
    task_logger.info(
        "task %s[%s] %s in %.3f s request_id=%s",
        name,
        task_id,
        state,
        seconds,
        logs.request_id.get() or "-",
        extra={"state": state, "duration_ms": round(seconds * 1000, 1)},
    )
    for var, token in ((logs.task, started[2]), (logs.request_id, started[1])):
        try:
            var.reset(token)
        except ValueError:  # set in another context (eager tasks nested in a request): leave it
            var.set(None)


def on_task_retry(sender: Any = None, **_: Any) -> None:
    metrics.count_retry(getattr(sender, "name", "unknown"))


def on_task_failure(sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **_: Any) -> None:
    metrics.count_failure(getattr(sender, "name", "unknown"))
    task_logger.warning(
        "task %s[%s] failed: %s", getattr(sender, "name", "unknown"), task_id, type(exception).__name__
    )


def on_worker_process_shutdown(pid: int | None = None, **_: Any) -> None:
    """A pool process ends: its live gauges stop counting (multi-process mode)."""
    if metrics.multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


def start_worker_endpoint() -> Any | None:
    """Serve this worker's metrics on ``WORKER_METRICS_PORT`` (bound to ``WORKER_METRICS_ADDR``,
    default 127.0.0.1), refused like the web's ``/metrics`` unless the token or address allows."""
    from django.conf import settings

    port = int(getattr(settings, "WORKER_METRICS_PORT", 0) or 0)
    if not port:
        return None
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:  # no access log lines on stderr
            pass

    def app(environ: dict, start_response: Callable) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not metrics.scrape_allowed(
            remote_addr=environ.get("REMOTE_ADDR"),
            authorization=environ.get("HTTP_AUTHORIZATION"),
            token=settings.METRICS_TOKEN,
            allowed_ips=settings.METRICS_ALLOWED_IPS,
        ):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"forbidden\n"]
        body, content_type = metrics.exposition(with_state=False)
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    address = settings.WORKER_METRICS_ADDR
    server = make_server(address, port, app, WSGIServer, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    logging.getLogger("recognition.observability").info(
        "worker metrics on %s:%s/metrics (multi-process: %s)", address, port, bool(metrics.multiprocess_dir())
    )
    return server
