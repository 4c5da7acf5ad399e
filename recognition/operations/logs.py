"""Logging: a request id that follows a web request into its Celery tasks, and JSON lines.

- ``request_id`` (a context variable) is set by ``observability.RequestMiddleware`` for each HTTP
  request (the client's ``X-Request-ID`` when it is a sane token, else a new one), copied into the
  headers of every task the request sends (``before_task_publish``) and set again in the worker
  while that task runs (``task_prerun``); ``task`` holds the running task's id and name.
- ``ContextFilter`` puts both on every log record (``%(request_id)s`` is ``-`` outside a request).
- ``JsonFormatter`` (``LOG_FORMAT=json``) writes one JSON object per line: time, level, logger,
  message, process, request_id, task_id/task, live_session, any ``extra=`` fields and the
  traceback as a string.

Nothing here logs request headers, bodies, query strings or settings: callers log routes and
ids, never paths that may carry tokens (password-reset links) or credentials.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
task: ContextVar[tuple[str, str] | None] = ContextVar("task", default=None)

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def new_request_id(incoming: str | None = None) -> str:
    """The client's id when it is a plain token of 8-64 characters (so a proxy's id is kept and
    nothing odd reaches the logs), else a fresh random one."""
    if incoming and _SANE_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id.get()


class ContextFilter(logging.Filter):
    """Adds ``request_id`` (``-`` when none), ``task_id`` and ``task`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get() or "-"
        running = task.get()
        if running is not None and not hasattr(record, "task_id"):
            record.task_id, record.task = running
        return True


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages and tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "process_name": record.processName,
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid and rid != "-":
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and key != "request_id" and not key.startswith("_"):
                out[key] = _plain(value)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """``settings.LOGGING``: one console handler, text (with the request id) or JSON lines."""
    if fmt not in ("text", "json"):
        raise ValueError(f"LOG_FORMAT must be text or json, not {fmt!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "recognition.operations.logs.ContextFilter"}},
        "formatters": {
            "text": {"format": TEXT_FORMAT},
            "json": {"()": "recognition.operations.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.request": {"level": "ERROR"}},
    }
