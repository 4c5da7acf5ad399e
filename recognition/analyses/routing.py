"""Websocket route of the analyses' status pushes (emotionsite/routing.py gathers the apps' routes)."""
from django.urls import path

from recognition.analyses import consumers

websocket_urlpatterns: list = [
    path("ws/analyses/", consumers.AnalysisStatusConsumer.as_asgi()),
]
