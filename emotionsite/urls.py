"""Top-level routes. Uploaded media has no public URL: it is served by owner-checked views."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from recognition.views import health
from recognition.views.metrics import metrics_view

urlpatterns = [
    # Probes (recognition/health.py): liveness, the process answers; readiness, its dependencies.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Prometheus exposition (recognition/metrics.py): METRICS_TOKEN or METRICS_ALLOWED_IPS only.
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("recognition.urls_accounts")),
    # Account page, two-factor sign-in, e-mail verification (privacy/urls.py)
    path("", include("privacy.urls")),
    path("api/v1/", include("recognition.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"
    ),
    path(
        "api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"
    ),
    path("", include("recognition.urls")),
]
