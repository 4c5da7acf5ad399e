"""Panels the corrections app draws on pages of other apps, so those apps need not import it:
``{% corrections_panel analysis %}`` on a result page, ``{% agreement_panel %}`` on the dashboard."""

from __future__ import annotations

from typing import Any

from django import template

from recognition.corrections import selectors

register = template.Library()


@register.inclusion_tag("corrections/_corrections.html", takes_context=True)
def corrections_panel(context: template.Context, analysis: Any) -> dict[str, Any]:
    """The form to correct each item of a finished result (windows folded apart)."""
    items = selectors.items_for(context["request"].user, analysis.pk)
    windows = [i for i in items if i.key.startswith("window-")]
    return {
        **context.flatten(),
        "correction_items": [i for i in items if not i.key.startswith("window-")],
        "correction_windows": windows,
        "windows_corrected": any(i.correction for i in windows),
    }


@register.inclusion_tag("corrections/_agreement.html", takes_context=True)
def agreement_panel(context: template.Context) -> dict[str, Any]:
    """How often the served models agreed with the request's user's corrections."""
    return {**context.flatten(), "agreement": selectors.agreement_for(context["request"].user)}
