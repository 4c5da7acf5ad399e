"""Pages of the analyses: upload, history and its exports, dashboard, a result, its media."""
from django.urls import path

from recognition.analyses import views

urlpatterns = [
    path("upload/", views.upload, name="upload"),
    path("history/", views.history, name="history"),
    path("history/export.csv", views.export, {"fmt": "csv"}, name="history-export-csv"),
    path("history/export.json", views.export, {"fmt": "json"}, name="history-export-json"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("analyses/status/", views.analysis_status, name="analysis-status"),
    path("analyses/<int:pk>/", views.analysis_detail, name="analysis-detail"),
    path("analyses/<int:pk>/media/", views.analysis_media, name="analysis-media"),
    path("analyses/<int:pk>/delete/", views.analysis_delete, name="analysis-delete"),
    path("analyses/<int:pk>/retry/", views.analysis_retry, name="analysis-retry"),
    path("account/delete-data/", views.delete_my_data, name="delete-my-data"),
    path("account/delete/", views.delete_my_account, name="delete-my-account"),
]
