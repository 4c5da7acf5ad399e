"""Websocket route of the live page (emotionsite/routing.py gathers the apps' routes)."""
from django.urls import path

from recognition.live import consumers

websocket_urlpatterns: list = [
    path("ws/live/", consumers.LiveConsumer.as_asgi()),
]
