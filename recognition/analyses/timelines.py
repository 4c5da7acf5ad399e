"""A recording's voice windows as spans on its real time axis, for the result page's strip
and chart.

The voice model scores 3 s windows every 1.5 s over the speech, so windows overlap and need not
reach the clip's start or end (silence is trimmed first). Each moment of the clip belongs to the
window whose centre is nearest: the spans cut the clip from 0 to its end with no overlap, and a
clip with a single window is one span from 0 to its end.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any


def voice_spans(result: dict[str, Any]) -> list[dict[str, Any]]:
    """``result["windows"]`` -> ``[{start, end, left, width, emotion, confidence,
    probabilities, window_start, window_end}]``: ``start``/``end`` the span in seconds,
    ``left``/``width`` its place on a strip in percent of the duration, ``window_*`` the
    scored window it shows."""
    windows = sorted(
        (w for w in result.get("windows") or [] if isinstance(w, dict)),
        key=lambda w: float(w.get("start") or 0),
    )
    if not windows:
        return []
    duration = float(result.get("duration") or 0) or max(
        float(w.get("end") or 0) for w in windows
    )
    if duration <= 0:
        return []
    centres = [(float(w["start"]) + float(w["end"])) / 2 for w in windows]
    cuts = [0.0]
    cuts += [min(max((a + b) / 2, 0.0), duration) for a, b in pairwise(centres)]
    cuts.append(duration)
    spans = []
    for window, start, end in zip(windows, cuts, cuts[1:]):
        spans.append(
            {
                "start": round(start, 3),
                "end": round(end, 3),
                "left": round(100 * start / duration, 3),
                "width": round(100 * (end - start) / duration, 3),
                "emotion": window.get("emotion"),
                "confidence": window.get("confidence"),
                "probabilities": window.get("probabilities") or {},
                "window_start": window.get("start"),
                "window_end": window.get("end"),
            }
        )
    return spans
