"""Pages for uploads and their results: upload, result, history, dashboard, export, delete.

Thin adapters: parse the request, call ``services``/``selectors``, render. Uploads answer JSON
to the page's XHR (``Accept: application/json``) and redirect plain form posts.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFilesSent,
)
from django.core.paginator import Paginator
from django.http import (
    HttpRequest,
    HttpResponse,
    JsonResponse,
    UnreadablePostError,
)
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.template.loader import select_template
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import corrections, exports, media, selectors, services, timelines
from ..forms import HistoryFilterForm, UploadForm
from ..media import MediaRejected

MAX_FILES_PER_POST = 20


def _wants_json(request: HttpRequest) -> bool:
    return (
        "application/json" in request.headers.get("Accept", "")
        or request.headers.get("X-Requested-With") == "XMLHttpRequest"
    )


def _upload_refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": message}, status=status)
    messages.error(request, message)
    return render(request, "recognition/upload.html", _upload_context(), status=status)


def _upload_limit_mb() -> str:
    """The upload limit in MB as people read it: 25, or 0.3 for a limit under 1 MB."""
    return f"{round(settings.MAX_UPLOAD_BYTES / (1024 * 1024), 1):g}"


def _upload_context() -> dict[str, Any]:
    config = {
        "uploadUrl": reverse("upload"),
        "statusUrl": reverse("analysis-status"),
        "maxBytes": settings.MAX_UPLOAD_BYTES,
    }
    return {
        "upload_config": config,
        "form": UploadForm(),
        "max_upload_bytes": settings.MAX_UPLOAD_BYTES,
        "max_upload_mb": _upload_limit_mb(),
        "max_audio_seconds": int(settings.MAX_AUDIO_SECONDS),
        "video_supported": media.VIDEO in services.ANALYSERS,
    }


@login_required
@csrf_exempt  # CSRF is checked below, after the size check, so a huge body is never parsed
def upload(request: HttpRequest) -> HttpResponse:
    """Upload page; POST stores each file as an analysis (one per file) and enqueues it."""
    if request.method == "POST":
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAX_UPLOAD_BYTES + 1024 * 1024:
            return _upload_refused(
                request,
                f"The upload is too large; the limit is "
                f"{_upload_limit_mb()} MB per file. Upload a smaller "
                "file: a shorter recording or video, or a photo saved at a lower resolution.",
                413,
            )
        try:
            request.POST  # noqa: B018 - parse now so malformed bodies become a clear 400
            request.FILES  # noqa: B018
        except (RequestDataTooBig, TooManyFilesSent):
            return _upload_refused(request, "The upload is too large.", 413)
        except (
            MultiPartParserError,
            UnreadablePostError,
            ValueError,
            SuspiciousOperation,
        ):
            # SuspiciousOperation: e.g. TooManyFieldsSent (over DATA_UPLOAD_MAX_NUMBER_FIELDS),
            # which Django otherwise answers with its bare HTML 400 page, not the JSON error.
            return _upload_refused(
                request, "The upload could not be read. Please try again.", 400
            )
    return _upload_protected(request)


@csrf_protect
@require_http_methods(["GET", "POST"])
def _upload_protected(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "recognition/upload.html", _upload_context())
    files = request.FILES.getlist("file") + request.FILES.getlist("files")
    if not files:
        return _upload_refused(request, "Choose a file to upload.", 400)
    if len(files) > MAX_FILES_PER_POST:
        return _upload_refused(
            request, f"Upload at most {MAX_FILES_PER_POST} files at a time.", 400
        )
    created, refused = [], []
    for upload_file in files:
        try:
            created.append(
                services.create_analysis(owner=request.user, upload=upload_file)
            )
        except MediaRejected as exc:
            refused.append((media.safe_original_name(upload_file.name), exc))
    if _wants_json(request):
        if len(files) == 1 and refused:
            return JsonResponse(
                {"error": refused[0][1].message}, status=refused[0][1].status
            )
        body = {
            "analyses": services.current_messages(owner=request.user, analyses=created),
            "errors": [{"name": n, "error": e.message} for n, e in refused],
        }
        if len(files) == 1:
            body["analysis"] = body["analyses"][0]
        status = 201 if created else max(e.status for _, e in refused)
        return JsonResponse(body, status=status)
    for name, exc in refused:
        messages.error(request, f"{name}: {exc.message}")
    if not created:
        status = max(e.status for _, e in refused)
        return render(
            request, "recognition/upload.html", _upload_context(), status=status
        )
    if len(created) == 1 and not refused:
        return redirect("analysis-detail", pk=created[0].pk)
    messages.success(
        request, f"{len(created)} file(s) uploaded and queued for analysis."
    )
    return redirect("history")


def _sorted_probabilities(
    probabilities: dict[str, float] | None,
) -> list[dict[str, Any]]:
    items = sorted((probabilities or {}).items(), key=lambda kv: -kv[1])
    return [{"label": k, "p": v, "pct": round(v * 100, 1)} for k, v in items]


def _overlaps(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float]
) -> bool:
    return (
        a[0] < b[0] + b[2]
        and b[0] < a[0] + a[2]
        and a[1] < b[1] + b[3]
        and b[1] < a[1] + a[3]
    )


def _face_overlay(result: dict[str, Any]) -> dict[str, Any] | None:
    """Geometry of the SVG drawn over the photo: boxes and label tags in image pixels (the
    SVG's viewBox is the analysed image, so it scales with the photo). Tags go above their box,
    else below, else inside its top edge: the first place that hides no other tag or face."""
    width, height = result.get("width"), result.get("height")
    if not width or not height:
        return None
    stroke = max(2.0, width / 400)
    font = max(
        11.0, width / 64
    )  # about 13 px on screen when the photo is shown ~830 px wide
    tag_h = font * 1.4
    boxes = [tuple(float(v) for v in face["box"]) for face in result.get("faces") or []]
    placed: list[tuple[float, float, float, float]] = []
    faces = []
    for i, face in enumerate(result.get("faces") or [], start=1):
        x, y, w, h = boxes[i - 1]
        label = (
            f"{i} too small to judge"
            if face.get("too_small")
            else f"{i} {face.get('emotion', '?')} {round((face.get('confidence') or 0) * 100)}%"
        )
        tag_w = len(label) * font * 0.62 + font * 0.7
        tag_x = min(max(0.0, x), max(0.0, width - tag_w))
        candidates = [y - tag_h, y + h, y]
        candidates = [c for c in candidates if 0 <= c <= height - tag_h] or [
            max(0.0, y)
        ]
        others = placed + [b for k, b in enumerate(boxes) if k != i - 1]
        tag_y = next(
            (
                c
                for c in candidates
                if not any(_overlaps((tag_x, c, tag_w, tag_h), o) for o in others)
            ),
            next(
                (
                    c
                    for c in candidates
                    if not any(_overlaps((tag_x, c, tag_w, tag_h), o) for o in placed)
                ),
                candidates[0],
            ),
        )
        placed.append((tag_x, tag_y, tag_w, tag_h))
        faces.append(
            {
                "n": i,
                "x": x,
                "y": y,
                "w": w,
                "h": h,
                "emotion": face.get("emotion", ""),
                "label": label,
                "tag_x": tag_x,
                "tag_y": tag_y,
                "tag_w": tag_w,
                "text_x": tag_x + font * 0.35,
                "text_y": tag_y + tag_h * 0.73,
            }
        )
    return {
        "width": width,
        "height": height,
        "ratio": width / height,
        "stroke": stroke,
        "font": font,
        "tag_h": tag_h,
        "faces": faces,
    }


def _live_timeline(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Live-session points ``{t, emotion}`` every ``timeline_step`` s as strip positions."""
    step = float(result.get("timeline_step") or 1.0)
    duration = max(float(result.get("duration") or 0), step)
    return [
        {
            "start": float(p.get("t") or 0),
            "emotion": p.get("emotion"),
            "left": round(100 * float(p.get("t") or 0) / duration, 3),
            "width": round(100 * step / duration, 3),
        }
        for p in result.get("timeline") or []
        if isinstance(p, dict)
    ]


def _result_context(analysis: Any) -> dict[str, Any]:
    """What the kind's result template (``recognition/results/<kind>.html``) shows."""
    result = analysis.result or {}
    context: dict[str, Any] = {"result": result, "needs_chart": False}
    if analysis.kind == "image":
        context["faces"] = [
            {**face, "n": i, "ranked": _sorted_probabilities(face.get("probabilities"))}
            for i, face in enumerate(result.get("faces") or [], start=1)
        ]
        context["overlay"] = _face_overlay(result)
    elif analysis.kind == "audio":
        context["voice_ranked"] = _sorted_probabilities(result.get("probabilities"))
        context["timeline"] = timelines.voice_spans(result)
        context["needs_chart"] = (
            analysis.status == "done"
            and bool(result.get("speech"))
            and bool(context["timeline"])
        )
    elif analysis.kind == "live":
        context["live_distribution"] = _sorted_probabilities(result.get("distribution"))
        context["timeline"] = _live_timeline(result)
        voice = result.get("voice") or {}
        context["voice_distribution"] = _sorted_probabilities(voice.get("distribution"))
    return context


@login_required
@require_GET
def analysis_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, selectors.get_analysis_for(request.user, pk))


def _detail_page(request: HttpRequest, analysis: Any, status: int = 200) -> HttpResponse:
    context = _result_context(analysis)
    items = corrections.items_for(request.user, analysis.pk)
    context["correction_items"] = [i for i in items if not i.key.startswith("window-")]
    context["correction_windows"] = [i for i in items if i.key.startswith("window-")]
    context["windows_corrected"] = any(i.correction for i in context["correction_windows"])
    result_template = select_template(
        [
            f"recognition/results/{analysis.kind}.html",
            "recognition/results/generic.html",
        ]
    )
    return render(
        request,
        "recognition/analysis_detail.html",
        {
            **context,
            "analysis": analysis,
            "result_template": result_template,
            "page_config": {
                "id": analysis.pk,
                "status": analysis.status,
                "statusUrl": reverse("analysis-status"),
                "spans": context["timeline"] if analysis.kind == "audio" else [],
            },
        },
        status=status,
    )


@login_required
@require_POST
def analysis_correct(request: HttpRequest, pk: int) -> HttpResponse:
    """Set (``label``) or clear (empty ``label``) the true emotion of one item (``item``)."""
    analysis = selectors.get_analysis_for(request.user, pk)
    item, label = request.POST.get("item", ""), request.POST.get("label", "")
    if not item:
        messages.error(request, "Choose the face, person or window to correct.")
        return _detail_page(request, analysis, status=400)
    try:
        if label:
            found = corrections.set_correction(owner=request.user, analysis_id=pk, item=item, label=label)
            messages.success(request, f"Saved: {found.title} is {label}.")
        else:
            corrections.clear_correction(owner=request.user, analysis_id=pk, item=item)
            messages.success(request, "Correction cleared.")
    except corrections.InvalidLabel as exc:
        messages.error(request, str(exc))
        return _detail_page(request, analysis, status=400)
    return redirect(reverse("analysis-detail", args=[pk]) + "#corrections")


@login_required
@require_GET
def corrections_page(request: HttpRequest) -> HttpResponse:
    """Your corrections, the models' agreement with them, the dataset download and sharing."""
    rows = corrections.corrections_for(request.user)
    return render(
        request,
        "recognition/corrections.html",
        {
            "agreement": corrections.agreement_for(request.user),
            "rows": rows[:200],
            "count": rows.count(),
            "share": corrections.sharing_of(request.user),
        },
    )


@login_required
@require_GET
def corrections_export(request: HttpRequest) -> HttpResponse:
    return corrections.dataset_response(request.user)


@login_required
@require_POST
def corrections_sharing(request: HttpRequest) -> HttpResponse:
    share = request.POST.get("share") == "on"
    corrections.set_sharing(user=request.user, share=share)
    messages.success(
        request,
        "Your corrections are shared with the training pool." if share else "Your corrections are no longer shared.",
    )
    return redirect("corrections")


@login_required
@require_GET
def analysis_media(request: HttpRequest, pk: int) -> HttpResponse:
    """The owner's original file (``?download=1`` to save it) or ``?variant=thumb|preview``."""
    analysis = selectors.get_analysis_for(request.user, pk)
    return media.serve(
        analysis,
        variant=request.GET.get("variant") or None,
        download=request.GET.get("download") == "1",
    )


@login_required
@require_GET
def analysis_status(request: HttpRequest) -> JsonResponse:
    """Polling fallback for the websocket: ``?ids=1,2,3`` -> the same payloads as pushes."""
    ids: list[int] = []
    for part in request.GET.get("ids", "").split(",")[:100]:
        if part.strip().isdigit():
            ids.append(int(part))
    found = selectors.status_for(request.user, ids)
    return JsonResponse({"analyses": [services.analysis_message(a) for a in found]})


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET or None)
    filters = form.filters() if request.GET else {}
    paginator = Paginator(selectors.analyses_for(request.user, **filters), 24)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "recognition/history.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "filtered": bool(filters),
            "history_config": {"statusUrl": reverse("analysis-status")},
        },
    )


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "recognition/dashboard.html",
        {"stats": selectors.stats_for(request.user)},
    )


@login_required
@require_GET
def export(request: HttpRequest, fmt: str) -> HttpResponse:
    """Download one's own history as CSV or JSON."""
    return exports.export_response(request.user, fmt)


@login_required
@require_POST
def analysis_retry(request: HttpRequest, pk: int) -> HttpResponse:
    analysis = services.retry_analysis(owner=request.user, analysis_id=pk)
    return redirect("analysis-detail", pk=analysis.pk)


@login_required
@require_http_methods(["GET", "POST"])
def analysis_delete(request: HttpRequest, pk: int) -> HttpResponse:
    analysis = selectors.get_analysis_for(request.user, pk)
    if request.method == "POST":
        services.delete_analysis(owner=request.user, analysis_id=analysis.pk)
        messages.success(
            request, f"Deleted {analysis.original_name or 'the analysis'}."
        )
        return redirect("history")
    return render(
        request,
        "recognition/confirm_delete.html",
        {
            "analysis": analysis,
            "action": reverse("analysis-delete", args=[analysis.pk]),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def delete_my_data(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        count = services.delete_user_data(owner=request.user)
        messages.success(
            request, f"Deleted all your data ({count} analyses and their files)."
        )
        return redirect("history")
    return render(
        request,
        "recognition/confirm_delete.html",
        {
            "analysis": None,
            "count": selectors.analyses_for(request.user).count(),
            "action": reverse("delete-my-data"),
        },
    )
