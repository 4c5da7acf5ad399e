"""Endpoints for operators: probes, Prometheus metrics, CSP violation reports."""
from django.urls import path

from recognition.operations import csp, views

urlpatterns = [
    # Probes (health.py): liveness, the process answers; readiness, its dependencies.
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    # Prometheus exposition (metrics.py): METRICS_TOKEN or METRICS_ALLOWED_IPS only.
    path("metrics", views.metrics_view, name="metrics"),
    # Content-Security-Policy violation reports (csp.py): logged.
    path("csp-report/", csp.csp_report, name="csp-report"),
]
