"""Websocket routes (see emotionsite.asgi)."""
from django.urls import path

from . import consumers, consumers_status

websocket_urlpatterns: list = [
    path("ws/live/", consumers.LiveConsumer.as_asgi()),
    path("ws/analyses/", consumers_status.AnalysisStatusConsumer.as_asgi()),
]
