"""The result page of an analysis: what its template gets (probabilities sorted, the face
overlay, the live timeline) and the page itself. Views of this app and of corrections use it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import select_template
from django.urls import reverse

from recognition.analyses import timelines


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


def detail_page(request: HttpRequest, analysis: Any, status: int = 200) -> HttpResponse:
    """The result page of one of the request's user's analyses (the corrections app draws its
    form on it through the ``corrections_panel`` template tag, and answers its posts with it)."""
    context = _result_context(analysis)
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
