"""The live page (its websocket route is in routing.py)."""
from django.urls import path

from recognition.live import views

urlpatterns = [
    path("live/", views.live, name="live"),
]
