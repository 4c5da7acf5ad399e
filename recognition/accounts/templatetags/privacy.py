"""``{% retention_note analysis %}``: when an analysis's stored file goes (or went), for the
history and result pages. The person's policy is read once per request."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from recognition.accounts import services
from recognition.accounts.models import RemovedMedia

register = template.Library()


@register.simple_tag(takes_context=True)
def retention_note(context, analysis) -> str:
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or analysis.owner_id != getattr(user, "pk", None):
        return ""
    policy = getattr(request, "_privacy_policy", None)
    if policy is None:
        policy = request._privacy_policy = services.policy_for(user)
    if analysis.kind == "live":
        if policy.mode == "all":
            when = policy.expires(analysis.created)
            return format_html('<span class="retention muted small">Will be deleted on <time datetime="{}">{}</time></span>', when.isoformat(), f"{when:%-d %b %Y}")
        return ""
    if not analysis.media:
        removed = RemovedMedia.objects.filter(analysis_id=analysis.pk).values_list("removed", flat=True).first()
        if removed:
            return format_html('<span class="retention muted small">File deleted on <time datetime="{}">{}</time>; results kept</span>', removed.isoformat(), f"{removed:%-d %b %Y}")
        return ""
    when = policy.expires(analysis.created)
    if when is None:
        return format_html('<span class="retention muted small">{}</span>', "File kept until you delete it")
    what = "File will be deleted" if policy.mode == "media" else "Will be deleted with its results"
    return format_html(
        '<span class="retention muted small">{} on <time datetime="{}">{}</time></span>',
        what,
        when.isoformat(),
        f"{when:%-d %b %Y}",
    )


@register.simple_tag(takes_context=True)
def uploads_blocked(context) -> bool:
    """True for a signed-in person whose e-mail address must be verified before uploading."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and not services.may_upload(user))
