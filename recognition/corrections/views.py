"""Pages of the corrections: correct one item of a result, your corrections with the models'
agreement, the dataset download and sharing."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from recognition.analyses import results
from recognition.analyses import selectors as analyses
from recognition.corrections import dataset, selectors, services


@login_required
@require_POST
def analysis_correct(request: HttpRequest, pk: int) -> HttpResponse:
    """Set (``label``) or clear (empty ``label``) the true emotion of one item (``item``)."""
    analysis = analyses.get_analysis_for(request.user, pk)
    item, label = request.POST.get("item", ""), request.POST.get("label", "")
    if not item:
        messages.error(request, "Choose the face, person or window to correct.")
        return results.detail_page(request, analysis, status=400)
    try:
        if label:
            found = services.set_correction(owner=request.user, analysis_id=pk, item=item, label=label)
            messages.success(request, f"Saved: {found.title} is {label}.")
        else:
            services.clear_correction(owner=request.user, analysis_id=pk, item=item)
            messages.success(request, "Correction cleared.")
    except services.InvalidLabel as exc:
        messages.error(request, str(exc))
        return results.detail_page(request, analysis, status=400)
    return redirect(reverse("analysis-detail", args=[pk]) + "#corrections")


@login_required
@require_GET
def corrections_page(request: HttpRequest) -> HttpResponse:
    """Your corrections, the models' agreement with them, the dataset download and sharing."""
    rows = selectors.corrections_for(request.user)
    return render(
        request,
        "corrections/corrections.html",
        {
            "agreement": selectors.agreement_for(request.user),
            "rows": rows[:200],
            "count": rows.count(),
            "share": selectors.sharing_of(request.user),
        },
    )


@login_required
@require_GET
def corrections_export(request: HttpRequest) -> HttpResponse:
    return dataset.dataset_response(request.user)


@login_required
@require_POST
def corrections_sharing(request: HttpRequest) -> HttpResponse:
    share = request.POST.get("share") == "on"
    services.set_sharing(user=request.user, share=share)
    messages.success(
        request,
        "Your corrections are shared with the training pool." if share else "Your corrections are no longer shared.",
    )
    return redirect("corrections")
