"""Content-Security-Policy: the header on every response (django-csp, policy in settings) and
the view browsers send violation reports to, which logs them.

The policy allows no inline script and no eval: pages load their scripts from static files (an
inline <script> would need ``nonce="{{ request.csp_nonce }}"``). ``connect-src 'self'`` covers
the site's websockets in browsers that follow CSP 3; the middleware adds this host's
``ws://``/``wss://`` origin for the others.
"""

from __future__ import annotations

import json
import logging
import re

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.middleware import PolicyParts
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

logger = logging.getLogger("recognition.csp")

# Fields of a report that are logged, each cut to FIELD_CHARS printable characters.
FIELDS = ("document-uri", "effective-directive", "violated-directive", "blocked-uri",
          "source-file", "line-number", "column-number", "disposition", "script-sample")  # fmt: skip
FIELD_CHARS = 300
# Reports logged per client address and minute; more are answered 204 and counted, not logged.
REPORTS_PER_MINUTE = 60
# Reporting API names of the report-uri fields.
CAMEL = {"documentURL": "document-uri", "blockedURL": "blocked-uri", "effectiveDirective": "effective-directive",
         "sourceFile": "source-file", "lineNumber": "line-number", "columnNumber": "column-number",
         "sample": "script-sample", "originalPolicy": "original-policy", "statusCode": "status-code"}  # fmt: skip
REPORT_TYPES = ("application/csp-report", "application/reports+json", "application/json")


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp's middleware, plus the websocket origin of the host the page was served from."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts
        scheme = "wss" if request.is_secure() else "ws"
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", ()), f"{scheme}://{host}"]
        parts.update = update
        return parts


def _clean(value: object) -> str:
    """A report field as one short line of printable text (reports come from anyone)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return re.sub(r"[^\x20-\x7e]", "?", text)[:FIELD_CHARS]


def _normalise(item: dict) -> dict:
    """One violation from the Reporting API ({"type": "csp-violation", "body": {...}}, camelCase)
    or from report-uri ({"csp-report": {...}}, hyphenated) as hyphenated fields."""
    if "csp-report" in item:
        body = item["csp-report"]
    elif item.get("type") == "csp-violation":
        body = item.get("body")
    else:
        raise ValueError("not a CSP report")
    if not isinstance(body, dict):
        raise ValueError("not a CSP report")  # noqa: TRY004 - one error for any bad body
    fields = {CAMEL.get(key, key): value for key, value in body.items()}
    if not any(k in fields for k in ("document-uri", "blocked-uri", "effective-directive", "violated-directive")):
        raise ValueError("not a CSP report")
    return fields


def parse_reports(body: bytes) -> list[dict]:
    """The violations in a report body; ValueError when it is not a CSP report."""
    data = json.loads(body.decode("utf-8"))
    items = data if isinstance(data, list) else [data]
    if not items or len(items) > 100 or not all(isinstance(i, dict) for i in items):
        raise ValueError("not a CSP report")
    return [_normalise(item) for item in items]


def _client(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


@csrf_exempt  # browsers send reports without a token; the view only writes to the log
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    """Log each violation in a CSP report (report-uri or Reporting API format): 204; 400 for a
    body that is not one, 413 past CSP_REPORT_MAX_BYTES."""
    content_type = request.content_type or ""
    if content_type not in REPORT_TYPES:
        return HttpResponse("Expected a CSP report.", status=400, content_type="text/plain")
    length = request.META.get("CONTENT_LENGTH") or "0"
    limit = getattr(settings, "CSP_REPORT_MAX_BYTES", 64 * 1024)
    if not length.isdigit() or int(length) > limit:
        return HttpResponse("Report too large.", status=413, content_type="text/plain")
    try:
        reports = parse_reports(request.body[: limit + 1])
    except (ValueError, UnicodeDecodeError, RecursionError):
        return HttpResponse("Expected a CSP report.", status=400, content_type="text/plain")
    key = f"csp-reports:{_client(request)}"
    cache.add(key, 0, timeout=60)
    try:
        seen = cache.incr(key)
    except ValueError:  # expired between add and incr
        seen = 1
    if seen <= REPORTS_PER_MINUTE:
        for report in reports:
            logger.warning(
                "CSP violation: %s",
                " ".join(f"{k}={_clean(report[k])!s}" for k in FIELDS if report.get(k) not in (None, "")),
            )
    elif seen == REPORTS_PER_MINUTE + 1:
        logger.warning("CSP reports from %s: over %d a minute, not logging more", _clean(_client(request)),
                       REPORTS_PER_MINUTE)  # fmt: skip
    return HttpResponse(status=204)
