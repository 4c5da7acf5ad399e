"""A user's history as a CSV or JSON download: one builder for the history page and the API,
so both get the same columns, the same encoding and the same spreadsheet-formula guard."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.http import HttpResponse
from django.utils import timezone

from recognition.analyses import selectors

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
# A cell starting with one of these is a formula to Excel/LibreOffice/Sheets ("CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """Structured columns as compact JSON text; formula-looking text behind a quote; None empty."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def render_rows(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"analyses": rows}, indent=1, default=str)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(selectors.EXPORT_FIELDS)
    writer.writerows([csv_cell(row[k]) for k in selectors.EXPORT_FIELDS] for row in rows)
    return buffer.getvalue()


def export_response(user: Any, fmt: str) -> HttpResponse:
    """The attachment with ``user``'s whole history in ``fmt`` (csv or json), never cached."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    response = HttpResponse(render_rows(selectors.export_rows(user), fmt), content_type=FORMATS[fmt])
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="emotionsite-{stamp}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    return response
