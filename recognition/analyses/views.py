"""Pages for uploads and their results: upload, result, history, dashboard, export, delete.

Thin adapters: parse the request, call ``services``/``selectors``, render. Uploads answer JSON
to the page's XHR (``Accept: application/json``) and redirect plain form posts.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
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
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from recognition.analyses import exports, media, results, selectors, services
from recognition.analyses.forms import DeleteAccountForm, HistoryFilterForm, UploadForm
from recognition.analyses.media import MediaRejected

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


@login_required
@require_GET
def analysis_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return results.detail_page(request, selectors.get_analysis_for(request.user, pk))


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
@sensitive_post_parameters("password", "code")
def delete_my_account(request: HttpRequest) -> HttpResponse:
    """Delete the signed-in account and everything in it once the password (and the second
    factor, when it is on) is given again; then signed out, on the home page."""
    from recognition.accounts.services import has_two_factor

    data = request.POST if request.method == "POST" else None
    form = DeleteAccountForm(data, two_factor=has_two_factor(request.user))
    if request.method == "POST" and form.is_valid():
        try:
            count = services.delete_account(
                owner=request.user, password=form.cleaned_data["password"],
                code=form.cleaned_data.get("code", ""), request=request,
            )  # fmt: skip
        except services.AccountDeletionRefused as exc:
            form.add_error(None, str(exc))
        else:
            logout(request)
            noun = "analysis" if count == 1 else "analyses"
            messages.success(request, f"Your account was deleted, with {count} {noun} and their files.")
            return redirect("home")
    return render(
        request,
        "recognition/confirm_delete_account.html",
        {"form": form, "count": selectors.analyses_for(request.user).count()},
        status=400 if form.errors else 200,
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
