"""Top-level routes. Uploaded media has no public URL: it is served by owner-checked views."""

from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from recognition import csp
from recognition.views import health
from recognition.views.metrics import metrics_view

urlpatterns = [
    # Probes (recognition/health.py): liveness, the process answers; readiness, its dependencies.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Prometheus exposition (recognition/metrics.py): METRICS_TOKEN or METRICS_ALLOWED_IPS only.
    path("metrics", metrics_view, name="metrics"),
    # Content-Security-Policy violation reports (recognition/csp.py): logged.
    path("csp-report/", csp.csp_report, name="csp-report"),
    path("admin/", admin.site.urls),
    path("accounts/", include("recognition.urls_accounts")),
    # Account page, two-factor sign-in, e-mail verification (privacy/urls.py)
    path("", include("privacy.urls")),
    path("api/v1/", include("recognition.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI with its init script as a static-like file (no inline script: CSP).
    path(
        "api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"
    ),
    # ReDoc writes its styles as <style> elements, runs its search in a blob: worker and shows
    # its maker's logo; its scripts stay under the strict script-src (no inline script, no eval).
    path(
        "api/redoc/",
        csp_update({"style-src-elem": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"],
                    "img-src": ["https://cdn.redoc.ly"]})(
            SpectacularRedocView.as_view(url_name="schema")
        ),
        name="api-redoc",
    ),
    path("", include("recognition.urls")),
]
