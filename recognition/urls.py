"""Page routes of the app (HTML). Each area keeps its views in its own module under views/."""
from django.urls import path

from .views import analyses, live, pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("live/", live.live, name="live"),
    # Uploads and their results (views/analyses.py)
    path("upload/", analyses.upload, name="upload"),
    path("history/", analyses.history, name="history"),
    path("history/export.csv", analyses.export, {"fmt": "csv"}, name="history-export-csv"),
    path("history/export.json", analyses.export, {"fmt": "json"}, name="history-export-json"),
    path("dashboard/", analyses.dashboard, name="dashboard"),
    path("analyses/status/", analyses.analysis_status, name="analysis-status"),
    path("analyses/<int:pk>/", analyses.analysis_detail, name="analysis-detail"),
    path("analyses/<int:pk>/media/", analyses.analysis_media, name="analysis-media"),
    path("analyses/<int:pk>/delete/", analyses.analysis_delete, name="analysis-delete"),
    path("analyses/<int:pk>/retry/", analyses.analysis_retry, name="analysis-retry"),
    path("analyses/<int:pk>/corrections/", analyses.analysis_correct, name="analysis-correct"),
    path("corrections/", analyses.corrections_page, name="corrections"),
    path("corrections/export.zip", analyses.corrections_export, name="corrections-export"),
    path("corrections/sharing/", analyses.corrections_sharing, name="corrections-sharing"),
    path("account/delete-data/", analyses.delete_my_data, name="delete-my-data"),
]
