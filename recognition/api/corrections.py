"""The corrections under /api/v1/: an analysis's items and their corrections, set and clear one,
the user's corrections, the dataset download and sharing."""


from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from recognition.analyses import selectors
from recognition.corrections import dataset as correction_dataset
from recognition.corrections import items as correction_items
from recognition.corrections import selectors as correction_selectors
from recognition.corrections import services as corrections

from .base import AnalysisPagination, AnyContentNegotiation, ApiView, errors
from .exceptions import LabelConflict
from .serializers import (
    CorrectionItemSerializer,
    CorrectionSerializer,
    CorrectionSetSerializer,
    PageQuerySerializer,
    SharingSerializer,
)

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
