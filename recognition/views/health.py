"""Liveness and readiness probes (logic in recognition/health.py): JSON, no login, no cookies."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from recognition import health


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process answers; touches nothing else."""
    return JsonResponse(health.liveness())


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, else 503 naming the failing checks."""
    answer = health.readiness()
    return JsonResponse(answer, status=200 if answer["status"] == "ready" else 503)
