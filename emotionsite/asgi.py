"""One ASGI application for HTTP and websockets, served by daphne (`daphne emotionsite.asgi:application`)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emotionsite.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from emotionsite.routing import websocket_urlpatterns


def leave_request_bodies_to_django() -> None:
    """Under daphne, stop Twisted parsing POST form bodies into ``request.args``, which daphne
    never reads: Twisted parsed every multipart upload a second time in memory and answered a
    body its own parser rejects (e.g. only the closing boundary) with a bare 400 of its own,
    before Django could answer it in the API's JSON error shape."""
    try:
        from daphne import http_protocol
    except ImportError:  # served by something else: nothing to change
        return
    if getattr(http_protocol.WebRequest, "leaves_bodies_to_django", False):
        return

    class WebRequest(http_protocol.WebRequest):
        leaves_bodies_to_django = True

        def __init__(self, *args, **kwargs) -> None:
            kwargs.setdefault("parsePOSTFormSubmission", False)
            super().__init__(*args, **kwargs)

    http_protocol.WebRequest = (
        WebRequest  # what daphne's HTTPFactory instantiates per request
    )


leave_request_bodies_to_django()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
