"""What every API view shares: the base view (authentication, throttles, the JSON error shape),
the documented error responses, query parsing and content negotiation for file downloads."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiResponse,
)
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.views import APIView

from recognition.analyses import media
from recognition.analyses.models import Analysis

from .exceptions import PayloadTooLarge
from .serializers import (
    ErrorSerializer,
    PageQuerySerializer,
)
from .throttling import DEFAULT_THROTTLES

FINISHED = (Analysis.Status.DONE, Analysis.Status.FAILED)
# Multipart framing around the file; a request longer than limit + this is refused unread.
MULTIPART_SLACK = 64 * 1024


ERROR_MEANINGS = {
    400: "Bad parameter or body, or a damaged file (`fields` names the inputs).",
    401: "No, invalid or revoked token.",
    403: "A write with the session cookie but without the CSRF token.",
    404: "Not found, or not yours.",
    409: "Conflicts with the resource's state.",
    413: "Too large: bytes, pixels or duration over the limits.",
    415: "Not a supported photo, recording or video.",
    416: "The requested byte range is outside the file.",
    429: "Throttled; retry after `Retry-After` seconds.",
}
# The file route answers with the file's own type: what the upload was stored with.
MEDIA_CONTENT_TYPES = (*media.UPLOAD_CONTENT_TYPES, "application/octet-stream")


def errors(*codes: int, **meanings: str) -> dict[int, OpenApiResponse]:
    """Schema entries for the error statuses an endpoint can answer (``meanings``: ``e404="..."``
    where an endpoint's reason differs from the usual one)."""
    return {
        code: OpenApiResponse(
            ErrorSerializer,
            description=meanings.get(
                f"e{code}", ERROR_MEANINGS.get(code, f"Error ({code}).")
            ),
        )
        for code in codes
    }


def query_of(request: Request) -> dict[str, str]:
    """The query string as plain values (the last of repeated ones), so that an empty value
    (``?kind=``) is validated like any other, not taken for an absent one (DRF's HTML-form rule)."""
    return request.query_params.dict()


class ApiView(APIView):
    """Base of every endpoint: per-user and anonymous throttles whose rates follow settings, and
    a 413 from the Content-Length header before a byte of an oversized body is read."""

    throttle_classes = DEFAULT_THROTTLES

    def body_limit(self) -> int | None:
        """Largest request body accepted, in bytes (None: no limit)."""
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        limit = self.body_limit()
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            raise PayloadTooLarge(
                f"The request is too large; the limit is {limit / (1024 * 1024):.1f} MB."
            )
        super().initial(request, *args, **kwargs)


class AnyContentNegotiation(DefaultContentNegotiation):
    """File and export responses ignore ``Accept`` (they are not rendered by DRF); errors from
    them are still JSON."""

    def select_renderer(
        self, request: Request, renderers: list, format_suffix: str | None = None
    ) -> tuple:
        return renderers[0], renderers[0].media_type

class AnalysisPagination(PageNumberPagination):
    """``page`` and ``page_size`` are validated as the schema types them (400 when not), where
    DRF would fall back to defaults; a page past the last one still answers 404."""

    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()  # `page` is an integer

    def paginate_queryset(self, queryset, request: Request, view=None):
        PageQuerySerializer(data=query_of(request)).is_valid(raise_exception=True)
        return super().paginate_queryset(queryset, request, view)
