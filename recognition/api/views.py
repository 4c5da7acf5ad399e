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
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from recognition.analyses import exports, media, selectors, services
from recognition.analyses.models import Analysis
from recognition.corrections import selectors as correction_selectors
from recognition.inference import registry

from .base import (
    FINISHED,
    MEDIA_CONTENT_TYPES,
    MULTIPART_SLACK,
    AnalysisPagination,
    AnyContentNegotiation,
    ApiView,
    errors,
    query_of,
)
from .serializers import (
    AnalysisFilterSerializer,
    AnalysisSerializer,
    DeviceSessionSerializer,
    MediaQuerySerializer,
    ModelCardSerializer,
    PageQuerySerializer,
    SavedLiveSessionSerializer,
    StatsSerializer,
    UploadQuerySerializer,
    UploadSerializer,
)
from .throttling import UploadThrottle

# ----------------------------------------------------------------------------- analyses




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


# ----------------------------------------------------------------------------- live sessions


class LiveSessionView(ApiView):
    """Save a live session analysed on the person's own device (numbers only)."""

    parser_classes = (JSONParser,)  # a timeline is JSON; a form or a file upload is a 415

    def body_limit(self) -> int:
        return settings.LIVE_DEVICE_MAX_BODY_BYTES

    @extend_schema(
        operation_id="live_sessions_create",
        tags=["analyses"],
        request=DeviceSessionSerializer,
        responses={201: SavedLiveSessionSerializer, **errors(400, 401, 413, 415, 429, 503)},
        summary="Save a live session analysed on the device",
        description=(
            "The emotion timeline of a live session the page analysed in the browser (\"On this "
            "device\"): times, optional face boxes and the seven probabilities of each face, with "
            "the model's name and version, which must be the served live model's (else 400). "
            "Stored like a session analysed on the server (kind `live`): it appears in the history, "
            "the dashboard and `GET /api/v1/analyses/`. Any field out of shape answers 400 and "
            "nothing is saved."
        ),
    )
    def post(self, request: Request) -> Response:
        try:
            analysis = services.save_device_session(owner=request.user, data=request.data)
        except services.DeviceSessionRejected as exc:
            raise ValidationError({exc.field: [str(exc)]}) from exc
        body = {
            "id": analysis.pk,
            "url": reverse("analysis-detail", args=[analysis.pk]),
            "api_url": reverse("api:analysis-detail", args=[analysis.pk]),
            "summary": analysis.result,
        }
        return Response(SavedLiveSessionSerializer(body).data, status=status.HTTP_201_CREATED)
