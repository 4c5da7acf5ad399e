"""The live page and its on-device model files (its websocket route is in routing.py)."""
from django.urls import path

from recognition.live import views

urlpatterns = [
    path("live/", views.live, name="live"),
    path("live/models.json", views.models_manifest, name="live-models"),
    path("live/models/<str:sha256>/<str:file>", views.model_file, name="live-model-file"),
]
