"""The live page: camera and microphone in the browser, analysis over /ws/live/ (see consumers)
or on the person's device (the model files and their manifest, ``ondevice``)."""

from csp.decorators import csp_update
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from recognition.inference import registry
from recognition.live import ondevice
from recognition.live.protocol import LiveLimits


# "On this device" compiles onnxruntime-web's WebAssembly: that page alone may compile wasm
# ('wasm-unsafe-eval' allows WebAssembly.compile/instantiate only; no eval, no inline script).
@csp_update({"script-src": ["'wasm-unsafe-eval'"]})
@login_required
def live(request: HttpRequest) -> HttpResponse:
    limits = LiveLimits.from_settings()
    try:
        download = ondevice.manifest()["download_bytes"]
    except registry.ModelUnavailable:
        download = None
    return render(
        request,
        "live/live.html",
        {
            "max_message_bytes": limits.max_message_bytes,
            "max_fps": min(30, int(limits.max_messages_per_second) // 2),
            # Frames are sent at the width the server analyses: no pixels wasted on the wire.
            "frame_width": max(160, min(640, limits.infer_max_width or 640)),
            "device_available": download is not None,
            "device_download_mb": f"{(download or 0) / 1e6:.1f}",
        },
    )


@login_required
@require_safe
def models_manifest(request: HttpRequest) -> HttpResponse:
    """The files "On this device" downloads, with their cards' sha256 (``ondevice.manifest``);
    503 with a message when the served files cannot be offered."""
    try:
        body = ondevice.manifest()
    except registry.ModelUnavailable:
        return JsonResponse({"error": "The on-device models are not available on this server."}, status=503)
    response = JsonResponse(body)
    response["Cache-Control"] = "private, no-cache"  # small; says which files are current
    return response


@login_required
@require_safe
def model_file(request: HttpRequest, sha256: str, file: str) -> HttpResponse:
    """One file of the manifest under its sha256: cached by the browser for good (the URL
    changes with the bytes); 404 for anything the manifest does not offer."""
    path = ondevice.served_file(sha256, file)
    if path is None:
        raise Http404("No such model file.")
    etag = f'"{sha256}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = FileResponse(path.open("rb"), content_type="application/octet-stream")
    response["ETag"] = etag
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response
