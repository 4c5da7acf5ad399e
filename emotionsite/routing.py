"""Websocket routes of every app (served by emotionsite.asgi; the protocol is docs/websockets.md)."""
from recognition.analyses import routing as analyses
from recognition.live import routing as live

websocket_urlpatterns: list = [*live.websocket_urlpatterns, *analyses.websocket_urlpatterns]
