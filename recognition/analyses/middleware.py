"""HTTP byte ranges for the owner's media (``FileResponse``), so players can seek.

Browsers fetch <video>/<audio> with ``Range: bytes=a-b`` and only allow seeking outside what
they have buffered when the server answers ``206 Partial Content``; Django's ``FileResponse``
always sends the whole file with 200. This middleware turns a 200 ``FileResponse`` of a
seekable file into a 206 for a single satisfiable range, or 416 for an unsatisfiable one, and
advertises ``Accept-Ranges: bytes``. Multiple ranges and ``If-Range`` get the whole file (allowed
by RFC 9110). Authorisation is untouched: the view has already decided who may read the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import IO

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 64 * 1024


def _size(fh: IO[bytes]) -> int | None:
    try:
        position = fh.tell()
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(position)
        return size
    except (AttributeError, OSError, ValueError):
        return None


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` -> inclusive (start, end) within ``size``;
    None when unsatisfiable. Raises ValueError when the header is not one byte range."""
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        raise ValueError(header)
    first, last = match.groups()
    if first == "":  # the last n bytes
        length = int(last)
        if length == 0 or size == 0:
            return None
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return None
    return start, end


def _stream(fh: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        fh.seek(start)
        while length > 0:
            chunk = fh.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        fh.close()


class RangeRequestsMiddleware:
    """Serve single byte ranges of file responses (see module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not isinstance(response, FileResponse) or response.status_code != 200:
            return response
        fh = getattr(response, "file_to_stream", None)
        size = _size(fh) if fh is not None else None
        if size is None:
            return response
        response["Accept-Ranges"] = "bytes"
        header = request.headers.get("Range")
        if request.method != "GET" or not header or "If-Range" in request.headers:
            return response
        try:
            byte_range = parse_range(header, size)
        except ValueError:
            return response  # not a single byte range: the whole file is a valid answer
        if byte_range is None:
            fh.close()
            # The API's one error shape (the API's media route answers this too).
            refused = JsonResponse(
                {"error": {"status": 416, "code": "range_not_satisfiable",
                           "message": f"The range is outside the file ({size} bytes)."}},
                status=416,
            )  # fmt: skip
            refused["Content-Range"] = f"bytes */{size}"
            refused["Accept-Ranges"] = "bytes"
            return refused
        start, end = byte_range
        response.status_code = 206
        response.streaming_content = _stream(fh, start, end - start + 1)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
        return response
