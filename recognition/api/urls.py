"""REST API v1 routes (namespace ``api``). Unknown paths under /api/v1/ answer a JSON 404."""

from django.urls import path, re_path

from . import corrections, tokens, views
from .exceptions import not_found

app_name = "api"

urlpatterns = [
    path("auth/token/", tokens.TokenView.as_view(), name="token"),
    path("auth/token/revoke/", tokens.TokenRevokeView.as_view(), name="token-revoke"),
    path("analyses/", views.AnalysisListView.as_view(), name="analysis-list"),
    path(
        "analyses/<int:pk>/", views.AnalysisDetailView.as_view(), name="analysis-detail"
    ),
    path(
        "analyses/<int:pk>/media/",
        views.AnalysisMediaView.as_view(),
        name="analysis-media",
    ),
    path(
        "analyses/<int:pk>/corrections/",
        corrections.CorrectionItemsView.as_view(),
        name="analysis-corrections",
    ),
    path(
        "analyses/<int:pk>/corrections/<str:item>/",
        corrections.CorrectionView.as_view(),
        name="analysis-correction",
    ),
    path("corrections/", corrections.CorrectionListView.as_view(), name="corrections"),
    path(
        "corrections/export.zip",
        corrections.CorrectionExportView.as_view(),
        name="corrections-export",
    ),
    path("corrections/sharing/", corrections.SharingView.as_view(), name="corrections-sharing"),
    path("export.csv", views.ExportCsvView.as_view(), name="export-csv"),
    path("export.json", views.ExportJsonView.as_view(), name="export-json"),
    path("live-sessions/", views.LiveSessionView.as_view(), name="live-sessions"),
    path("models/", views.ModelsView.as_view(), name="models"),
    path("stats/", views.StatsView.as_view(), name="stats"),
    re_path(r"^", not_found, name="not-found"),  # any rest, newlines included
]
