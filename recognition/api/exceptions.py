"""One error shape for the whole API.

Every error answers ``{"error": {"status": N, "code": "...", "message": "...", "fields": {...}}}``
(``fields`` only for validation errors: field name -> list of messages). DRF's own exceptions,
Django's ``Http404``/``PermissionDenied``, the upload checks (``MediaRejected``: 400/413/415) and
unusable media (``InvalidMedia``: 400) all map onto it, with DRF's headers kept
(``WWW-Authenticate`` on 401, ``Retry-After`` on 429, ``Allow`` on 405).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from recognition.analyses.media import MediaRejected
from recognition.inference.errors import InvalidMedia
from recognition.inference.registry import ModelUnavailable

logger = logging.getLogger(__name__)

# A stable machine-readable code per status where the exception itself gives none worth keeping.
MEDIA_CODES = {
    400: "invalid_media",
    403: "email_unverified",  # privacy: a sign-up uploads once its e-mail address is verified
    413: "too_large",
    415: "unsupported_media_type",
}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "too_large"


class LabelConflict(exceptions.APIException):
    """A correction's label that the item's model does not have (the other model's label)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The label is not one of this item's classes."
    default_code = "label_not_in_model"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The recognition model is not available right now."
    default_code = "model_unavailable"


def error_body(
    status_code: int, code: str, message: str, fields: Any = None
) -> dict[str, Any]:
    """The JSON body of every API error."""
    error: dict[str, Any] = {"status": status_code, "code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def _first_message(detail: Any, prefix: str = "") -> str:
    """A one-line message from a DRF error detail (str, list or nested dict)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "detail") else f"{key}: "
            return _first_message(value, prefix or name)
        return prefix.rstrip(": ")
    if isinstance(detail, list):
        return _first_message(detail[0], prefix) if detail else prefix.rstrip(": ")
    return f"{prefix}{detail}"


def _first_code(codes: Any) -> str:
    if isinstance(codes, dict):
        return _first_code(next(iter(codes.values()), "invalid"))
    if isinstance(codes, list):
        return _first_code(codes[0]) if codes else "invalid"
    return str(codes)


def _translate(exc: Exception) -> Exception:
    """Non-DRF exceptions that have a meaning for a client, as DRF exceptions."""
    if isinstance(exc, MediaRejected):
        error = exceptions.APIException(
            exc.message, code=MEDIA_CODES.get(exc.status, "invalid_media")
        )
        error.status_code = exc.status
        return error
    if isinstance(exc, InvalidMedia):
        return exceptions.ValidationError({"file": [str(exc)]}, code="invalid_media")
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, SuspiciousOperation):
        # TooManyFieldsSent / TooManyFilesSent / SuspiciousMultipartForm raised while DRF parses
        # a body: Django's middleware would answer 400, but inside DRF they became a 500.
        logger.warning("suspicious request: %s", exc)
        return exceptions.ParseError(
            "The request could not be read: too many fields or files, or a malformed body."
        )
    if isinstance(exc, RecursionError):
        # DRF's JSONParser catches only ValueError: a body like "[[[[..." (100k deep) overflowed
        # json.loads and answered 500. It is bad input, not a server fault.
        logger.warning("request body nested too deeply: %s", exc)
        return exceptions.ParseError("The request body is nested too deeply.")
    if isinstance(exc, ModelUnavailable):
        logger.error("model unavailable: %s", exc)
        return ServiceUnavailable()
    return exc


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: DRF's handler, then the body rewritten to one shape."""
    exc = _translate(exc)
    response = exception_handler(exc, context)
    if response is None:  # a bug: log it, still answer JSON rather than an HTML page
        logger.exception("unhandled API error", exc_info=exc)
        set_rollback()
        return Response(
            error_body(500, "server_error", "Internal server error."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        fields = (
            exc.detail
            if isinstance(exc.detail, dict)
            else {"non_field_errors": exc.detail}
        )
        codes = exc.get_codes()
        # One well-known code (e.g. invalid_credentials) is worth keeping; field errors are "invalid".
        only_general = not isinstance(codes, dict) or set(codes) <= {"non_field_errors"}
        code = _first_code(codes) if only_general else "invalid"
        response.data = error_body(
            response.status_code, code, _first_message(exc.detail), fields
        )
    else:
        code = _first_code(exc.get_codes())
        response.data = error_body(
            response.status_code, code, _first_message(exc.detail)
        )
    return response


@csrf_exempt  # it changes nothing; without this a DELETE there got the CSRF middleware's HTML 403
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under /api/v1/ (e.g. ``/analyses/abc/``) answer the JSON 404 whatever the
    method, not the site's HTML page."""
    return JsonResponse(
        error_body(404, "not_found", "No such API endpoint."), status=404
    )
