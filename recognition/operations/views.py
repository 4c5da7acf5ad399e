"""Operations endpoints: the liveness and readiness probes (logic in health.py), JSON, no login, no
cookies; ``GET /metrics`` (Prometheus exposition, metrics.py), refused (403) unless the bearer token
(``METRICS_TOKEN``) or the client address (``METRICS_ALLOWED_IPS``) allows it. The CSP report
endpoint is ``csp.csp_report``."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from recognition.operations import health, metrics


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



@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics.scrape_allowed(
        remote_addr=request.META.get("REMOTE_ADDR"),
        authorization=request.headers.get("Authorization"),
        token=settings.METRICS_TOKEN,
        allowed_ips=settings.METRICS_ALLOWED_IPS,
    ):
        return JsonResponse(
            {"error": {"status": 403, "code": "forbidden",
                       "message": "Metrics need the scrape token or an allowed address."}},
            status=403,
        )  # fmt: skip
    body, content_type = metrics.exposition(with_state=True)
    return HttpResponse(body, content_type=content_type)
