"""The live page: camera and microphone in the browser, analysis over /ws/live/ (see consumers)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from recognition.live.protocol import LiveLimits


@login_required
def live(request: HttpRequest) -> HttpResponse:
    limits = LiveLimits.from_settings()
    return render(
        request,
        "live/live.html",
        {
            "max_message_bytes": limits.max_message_bytes,
            "max_fps": min(30, int(limits.max_messages_per_second) // 2),
            # Frames are sent at the width the server analyses: no pixels wasted on the wire.
            "frame_width": max(160, min(640, limits.infer_max_width or 640)),
        },
    )
