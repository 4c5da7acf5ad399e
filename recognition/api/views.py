"""REST API v1 views: parse and validate, call a service or selector, render. Nothing else.

Authentication: ``Authorization: Token <token>`` (from ``POST /api/v1/auth/token/``) or the
site's session. Errors use one JSON shape (see ``exceptions.py``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recognition.accounts import services as privacy_services
from recognition.corrections import dataset as correction_dataset, items as correction_items, selectors as correction_selectors, services as corrections
from recognition.analyses import exports, media, selectors, services
from recognition.inference import registry
from recognition.analyses.models import Analysis

from .exceptions import LabelConflict, PayloadTooLarge
from .serializers import (
    AnalysisFilterSerializer,
    AnalysisSerializer,
    CorrectionItemSerializer,
    CorrectionSerializer,
    CorrectionSetSerializer,
    CredentialsSerializer,
    ErrorSerializer,
    MediaQuerySerializer,
    ModelCardSerializer,
    PageQuerySerializer,
    SharingSerializer,
    StatsSerializer,
    TokenSerializer,
    UploadQuerySerializer,
    UploadSerializer,
)
from .throttling import DEFAULT_THROTTLES, TokenCreateThrottle, UploadThrottle

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


# ----------------------------------------------------------------------------- tokens


def revoke_token(request: Request) -> Response:
    """Delete the caller's token: every request with it answers 401 from now on."""
    privacy_services.revoke_token(user=request.user, request=request, reason="through the API")
    return Response(status=status.HTTP_204_NO_CONTENT)


class TokenView(ApiView):
    """``POST``: username + password -> token (same token until revoked). ``DELETE``: revoke it."""

    parser_classes = (JSONParser, FormParser, MultiPartParser)

    def _is_post(self) -> bool:
        # getattr: the schema generator asks before there is a request.
        return getattr(self.request, "method", None) == "POST"

    def get_authenticators(self) -> list:
        # Credentials are in the body: a stale or revoked token header must not block a new one.
        return [] if self._is_post() else super().get_authenticators()

    def get_permissions(self) -> list:
        return [AllowAny()] if self._is_post() else super().get_permissions()

    def get_throttles(self) -> list:
        return [TokenCreateThrottle()] if self._is_post() else super().get_throttles()

    @extend_schema(
        operation_id="auth_token_create",
        tags=["auth"],
        request=CredentialsSerializer,
        responses={200: TokenSerializer, **errors(400, 429)},
        auth=[],
        summary="Get an API token",
        description="Exchange a username and password for a token (throttled per client: scope "
        "`token`). An account with two-factor sign-in also sends `otp`.",
    )
    def post(self, request: Request) -> Response:
        credentials = CredentialsSerializer(
            data=request.data, context={"request": request}
        )
        credentials.is_valid(raise_exception=True)
        try:  # an account with two-factor sign-in must pass it here too (privacy)
            token = privacy_services.issue_token(
                user=credentials.validated_data["user"],
                otp=credentials.validated_data.get("otp", ""),
                request=request,
            )
        except privacy_services.SecondFactorRequired as exc:
            raise ValidationError(exc.message, code=exc.code) from None
        return Response({"token": token.key})

    @extend_schema(
        operation_id="auth_token_revoke",
        tags=["auth"],
        request=None,
        responses={
            204: OpenApiResponse(description="Revoked."),
            **errors(401, 403, 429),
        },
        summary="Revoke the API token",
        description="Deletes the caller's token; requests with it then answer 401.",
    )
    def delete(self, request: Request) -> Response:
        return revoke_token(request)


class TokenRevokeView(ApiView):
    """``POST /auth/token/revoke/``: the same as ``DELETE /auth/token/``, for clients without DELETE."""

    @extend_schema(
        operation_id="auth_token_revoke_post",
        tags=["auth"],
        request=None,
        responses={
            204: OpenApiResponse(description="Revoked."),
            **errors(401, 403, 429),
        },
        summary="Revoke the API token (POST)",
    )
    def post(self, request: Request) -> Response:
        return revoke_token(request)


# ----------------------------------------------------------------------------- analyses


class AnalysisPagination(PageNumberPagination):
    """``page`` and ``page_size`` are validated as the schema types them (400 when not), where
    DRF would fall back to defaults; a page past the last one still answers 404."""

    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()  # `page` is an integer

    def paginate_queryset(self, queryset, request: Request, view=None):
        PageQuerySerializer(data=query_of(request)).is_valid(raise_exception=True)
        return super().paginate_queryset(queryset, request, view)


def wait_until_finished(analysis: Analysis, seconds: float) -> Analysis:
    """Re-read the analysis until it is done or failed or ``seconds`` pass (HTTP long-poll)."""
    deadline = time.monotonic() + seconds
    delay = 0.05
    analysis.refresh_from_db()
    while analysis.status not in FINISHED and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(delay, left))
        delay = min(delay * 1.5, 0.1)
        analysis.refresh_from_db()
    return analysis


class AnalysisListView(ApiView):
    """The caller's analyses (newest first) and new uploads."""

    parser_classes = (MultiPartParser, FormParser)
    # Also tells the schema generator that the list is paginated.
    pagination_class = AnalysisPagination

    def body_limit(self) -> int:
        return settings.MAX_UPLOAD_BYTES + MULTIPART_SLACK

    def get_throttles(self) -> list:
        throttles = super().get_throttles()
        return (
            [*throttles, UploadThrottle()]
            if self.request.method == "POST"
            else throttles
        )

    @extend_schema(
        operation_id="analyses_list",
        tags=["analyses"],
        parameters=[AnalysisFilterSerializer, PageQuerySerializer],
        responses={
            200: AnalysisSerializer(many=True),
            **errors(400, 401, 404, 429, e404="`page` is past the last page."),
        },
        summary="List your analyses",
        description="Newest first, paginated (`page`, `page_size` up to 100), filtered by kind, "
        "headline emotion and creation day.",
    )
    def get(self, request: Request) -> Response:
        filters = AnalysisFilterSerializer(data=query_of(request))
        filters.is_valid(raise_exception=True)
        analyses = selectors.analyses_for(request.user, **filters.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(analyses, request, view=self)
        return paginator.get_paginated_response(
            AnalysisSerializer(page, many=True, context={"request": request}).data
        )

    @extend_schema(
        operation_id="analyses_create",
        tags=["analyses"],
        parameters=[UploadQuerySerializer],
        request={
            "multipart/form-data": OpenApiRequest(
                UploadSerializer,
                encoding={
                    "file": {"contentType": ", ".join(media.UPLOAD_CONTENT_TYPES)}
                },
            )
        },
        responses={
            201: OpenApiResponse(
                AnalysisSerializer,
                description="Finished within `wait` seconds (done or failed).",
            ),
            202: OpenApiResponse(
                AnalysisSerializer,
                description="Accepted; poll `url` until `status` is done or failed.",
            ),
            **errors(
                400,
                401,
                403,
                404,
                413,
                415,
                429,
                e400="No file, an empty file, a damaged or undecodable one, or a bad `wait`.",
                e403="A session write without the CSRF token, or an account whose e-mail "
                "address is not verified yet (code `email_unverified`).",
                e404="The analysis was deleted while waiting for it.",
            ),
        },
        summary="Upload a photo, recording or video for analysis",
        description="The kind is read from the file's bytes, whatever the part's name or type says: "
        "a file none of the listed formats is refused with 415, an empty or damaged one with 400, "
        "one over the size, pixel or duration limits with 413. Without `wait` the answer is 202 at "
        "once; with `wait=N` it comes when the analysis finishes (201) or after N seconds (202).",
    )
    def post(self, request: Request) -> Response:
        query = UploadQuerySerializer(data=query_of(request))
        query.is_valid(raise_exception=True)
        upload = UploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        analysis = services.create_analysis(
            owner=request.user, upload=file, filename=file.name
        )
        wait = query.validated_data["wait"]
        if wait > 0:
            try:
                analysis = wait_until_finished(analysis, wait)
            except Analysis.DoesNotExist:
                raise NotFound(
                    "The analysis was deleted while waiting for it."
                ) from None
        data = AnalysisSerializer(analysis, context={"request": request}).data
        code = (
            status.HTTP_201_CREATED
            if wait > 0 and analysis.status in FINISHED
            else status.HTTP_202_ACCEPTED
        )
        return Response(data, status=code, headers={"Location": data["url"]})


class AnalysisDetailView(ApiView):
    @extend_schema(
        operation_id="analyses_retrieve",
        tags=["analyses"],
        responses={200: AnalysisSerializer, **errors(401, 404, 429)},
        summary="One of your analyses",
    )
    def get(self, request: Request, pk: int) -> Response:
        analysis = selectors.get_analysis_for(request.user, pk)
        return Response(AnalysisSerializer(analysis, context={"request": request}).data)

    @extend_schema(
        operation_id="analyses_destroy",
        tags=["analyses"],
        responses={
            204: OpenApiResponse(description="Deleted, with its files."),
            **errors(401, 403, 404, 429),
        },
        summary="Delete one of your analyses and its files",
    )
    def delete(self, request: Request, pk: int) -> Response:
        services.delete_analysis(owner=request.user, analysis_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


def file_responses(status_code: int, description: str) -> dict:
    """One schema entry per content type the uploaded file can be served with."""
    return {
        (status_code, content_type): OpenApiResponse(
            OpenApiTypes.BINARY, description=description
        )
        for content_type in MEDIA_CONTENT_TYPES
    }


class AnalysisMediaView(ApiView):
    content_negotiation_class = AnyContentNegotiation

    @extend_schema(
        operation_id="analyses_media",
        tags=["analyses"],
        parameters=[MediaQuerySerializer],
        responses={
            **file_responses(200, "The uploaded file, with the type it was stored as."),
            **file_responses(206, "The byte range asked for with `Range: bytes=a-b`."),
            **errors(
                400,
                401,
                404,
                416,
                429,
                e404="Not found, not yours, or it has no file (live sessions).",
            ),
        },
        summary="The file you uploaded",
        description="Served with the content type read from its bytes at upload. Answers single "
        "byte ranges (`Range`, 206; 416 outside the file), as media players need to seek.",
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        query = MediaQuerySerializer(data=query_of(request))
        query.is_valid(raise_exception=True)
        analysis = selectors.get_analysis_for(request.user, pk)
        return media.serve(analysis, download=query.validated_data["download"])


# ----------------------------------------------------------------------------- export, stats, models


class ExportCsvView(ApiView):
    content_negotiation_class = AnyContentNegotiation

    @extend_schema(
        operation_id="export_csv",
        tags=["history"],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="One row per analysis."
            ),
            **errors(401, 429),
        },
        summary="Your analyses as CSV",
    )
    def get(self, request: Request) -> HttpResponse:
        return exports.export_response(request.user, "csv")


class ExportJsonView(ApiView):
    content_negotiation_class = AnyContentNegotiation

    @extend_schema(
        operation_id="export_json",
        tags=["history"],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT, description='`{"analyses": [rows]}`'
            ),
            **errors(401, 429),
        },
        summary="Your analyses as JSON",
    )
    def get(self, request: Request) -> HttpResponse:
        return exports.export_response(request.user, "json")


class StatsView(ApiView):
    @extend_schema(
        operation_id="stats",
        tags=["history"],
        responses={
            200: StatsSerializer,
            **errors(401, 429),
        },
        summary="Your dashboard numbers",
    )
    def get(self, request: Request) -> Response:
        stats = selectors.stats_for(request.user)
        return Response({**stats, "corrections": correction_selectors.agreement_for(request.user)})


def served_models() -> dict[str, str]:
    """Task -> served model name, from models/registry.json (empty when there is none yet)."""
    try:
        names = json.loads((registry.models_dir() / "registry.json").read_text())
    except (OSError, ValueError):
        return {}
    return (
        {task: name for task, name in sorted(names.items()) if isinstance(name, str)}
        if isinstance(names, dict)
        else {}
    )


def headline_metrics(metrics: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(split name, its metrics): the held-out ``test`` split when the card has one, else the
    first split with an accuracy (e.g. a validation split), else the top level."""
    if isinstance(metrics.get("test"), dict):
        return "test", metrics["test"]
    for name, value in metrics.items():
        if isinstance(value, dict) and "accuracy" in value:
            return name, value
    return None, metrics


def model_summary(task: str, name: str) -> dict[str, Any]:
    """The API view of one model card (registry + card), marked unavailable when unreadable."""
    summary: dict[str, Any] = {"task": task, "name": name, "version": "", "architecture": None, "classes": [],
                               "accuracy": None, "ece": None, "test_size": None, "metrics_split": None, "test_data": None,
                               "parameters": None, "date": None, "available": True, "detail": ""}  # fmt: skip
    try:
        card = registry.load_card(name)
    except registry.ModelUnavailable as exc:
        return {**summary, "available": False, "detail": str(exc)}
    split, test = headline_metrics(card.get("metrics") or {})
    if card.get("kind") == "ensemble":  # no file of its own: every member's file must be there
        members = [registry.load_card(m["name"]) if (registry.models_dir() / f"{m['name']}.json").exists() else {"file": f"{m['name']}.keras"}
                   for m in card.get("members") or []]
        paths = [registry.models_dir() / m.get("file", "") for m in members] or [registry.models_dir() / f"{name}.keras"]
    else:
        paths = [registry.models_dir() / card.get("file", f"{name}.keras")]
    summary.update(
        version=str(card.get("version", "")),
        architecture=card.get("architecture"),
        classes=list(card.get("classes", [])),
        accuracy=test.get("accuracy"),
        ece=test.get("ece"),
        test_size=test.get("n"),
        metrics_split=split,
        test_data=(card.get("data") or {}).get("test"),
        parameters=card.get("parameters"),
        date=card.get("date"),
    )
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        summary.update(available=False, detail=f"model file {', '.join(missing)} is missing")
    return summary


class ModelsView(ApiView):
    @extend_schema(
        operation_id="models_list",
        tags=["models"],
        responses={200: ModelCardSerializer(many=True), **errors(401, 429)},
        summary="The served models and their test metrics",
    )
    def get(self, request: Request) -> Response:
        cards = [model_summary(task, name) for task, name in served_models().items()]
        return Response(ModelCardSerializer(cards, many=True).data)


# ----------------------------------------------------------------------------- corrections

ITEM_PARAMETER = OpenApiParameter(
    "item", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=f"^({correction_items.ITEM_PATTERN})$",
    description="The item: `face-<n>` (a photo's face n, from 1), `track-<id>` (a video's person), "
    "`recording` or `window-<n>` (a recording, window n from 1), `session` (a live session).",
)  # fmt: skip


def correction_item(request: Request, pk: int, item: str) -> dict[str, Any]:
    for found in correction_selectors.items_for(request.user, pk):
        if found.key == item:
            return found.as_dict()
    raise NotFound("No such item in this analysis.")  # pragma: no cover - set_correction checked it


class CorrectionItemsView(ApiView):
    @extend_schema(
        operation_id="analyses_corrections_list",
        tags=["corrections"],
        responses={200: CorrectionItemSerializer(many=True), **errors(401, 404, 429)},
        summary="The items of one of your analyses and your corrections",
        description="Every face, person, recording window or session the result has, with the model's "
        "prediction and your correction (`label`, null when none). Empty until the analysis is done.",
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response([item.as_dict() for item in correction_selectors.items_for(request.user, pk)])


class CorrectionView(ApiView):
    parser_classes = (JSONParser,)  # a form's strings cannot say null or a boolean: JSON only

    @extend_schema(
        operation_id="analyses_corrections_set",
        tags=["corrections"],
        parameters=[ITEM_PARAMETER],
        request=CorrectionSetSerializer,
        responses={
            200: CorrectionItemSerializer,
            **errors(
                400, 401, 403, 404, 409, 415, 429,
                e400="`label` missing or not an emotion either model knows.",
                e404="No such analysis or item, not yours, deleted, or not finished.",
                e409="`label` is not one of this item's `classes` (it belongs to the other model).",
                e415="The body is not JSON.",
            ),
        },
        summary="Set or change the true emotion of one item",
    )
    def put(self, request: Request, pk: int, item: str) -> Response:
        selectors.get_analysis_for(request.user, pk)  # someone else's: 404 whatever the body
        body = CorrectionSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            corrections.set_correction(
                owner=request.user, analysis_id=pk, item=item, label=body.validated_data["label"]
            )
        except corrections.InvalidLabel as exc:
            raise LabelConflict(str(exc)) from None
        return Response(correction_item(request, pk, item))

    @extend_schema(
        operation_id="analyses_corrections_clear",
        tags=["corrections"],
        parameters=[ITEM_PARAMETER],
        responses={
            204: OpenApiResponse(description="Cleared (also when there was no correction)."),
            **errors(401, 403, 404, 429, e404="No such analysis or item, not yours, deleted, or not finished."),
        },
        summary="Clear your correction of one item",
    )
    def delete(self, request: Request, pk: int, item: str) -> Response:
        corrections.clear_correction(owner=request.user, analysis_id=pk, item=item)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CorrectionListView(ApiView):
    pagination_class = AnalysisPagination

    @extend_schema(
        operation_id="corrections_list",
        tags=["corrections"],
        parameters=[PageQuerySerializer],
        responses={
            200: CorrectionSerializer(many=True),
            **errors(400, 401, 404, 429, e404="`page` is past the last page."),
        },
        summary="All your corrections",
        description="Newest change first, paginated like the analyses.",
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(correction_selectors.corrections_for(request.user), request, view=self)
        return paginator.get_paginated_response([correction_selectors.correction_row(c) for c in page])


class CorrectionExportView(ApiView):
    content_negotiation_class = AnyContentNegotiation

    @extend_schema(
        operation_id="corrections_export",
        tags=["corrections"],
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="`face/<label>/*.png` (48x48 grey crops), `voice/<label>/*.wav` (16 kHz mono), "
                "`manifest.csv` (path, task, analysis, item, label, predicted, confidence, model, version, "
                "box, t, start, end, created), `README.txt`.",
            ),
            **errors(401, 429),
        },
        summary="Your corrected items as a training dataset (zip)",
    )
    def get(self, request: Request) -> HttpResponse:
        return correction_dataset.dataset_response(request.user)


class SharingView(ApiView):
    parser_classes = (JSONParser,)

    @extend_schema(
        operation_id="corrections_sharing",
        tags=["corrections"],
        responses={200: SharingSerializer, **errors(401, 429)},
        summary="Whether you share your corrections",
    )
    def get(self, request: Request) -> Response:
        return Response({"share": correction_selectors.sharing_of(request.user)})

    @extend_schema(
        operation_id="corrections_sharing_set",
        tags=["corrections"],
        request=SharingSerializer,
        responses={
            200: SharingSerializer,
            **errors(400, 401, 403, 415, 429, e400="`share` missing or not a JSON boolean.",
                     e415="The body is not JSON."),
        },
        summary="Share your corrections with the training pool, or stop",
        description="Off by default. On: an administrator's pool export (`manage.py export_corrections --pool`) "
        "includes your corrected items; off: every later export leaves them out.",
    )
    def put(self, request: Request) -> Response:
        body = SharingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response({"share": corrections.set_sharing(user=request.user, share=body.validated_data["share"])})
