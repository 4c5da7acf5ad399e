"""Retention: apply each account's policy (``accounts.services.policy_for``, else the site's) to
its analyses. Files, or whole analyses, older than their N days go; the account log says how many.
Lives with the analyses because it deletes them; the policy and the log belong to accounts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from recognition.accounts import services as accounts
from recognition.accounts.models import AccountEvent, Profile, RemovedMedia, Retention
from recognition.analyses import media
from recognition.analyses.models import Analysis


def _expire(analyses, *, mode: str, now: datetime, limit: int) -> dict[int, int]:
    """Delete the files (mode media) or the analyses (mode all) of ``analyses``; {owner: count}."""
    finished = [Analysis.Status.DONE, Analysis.Status.FAILED]
    if mode == Retention.MEDIA:
        analyses = analyses.filter(status__in=finished, removed_media__isnull=True).exclude(kind=Analysis.Kind.LIVE)
    else:
        analyses = analyses.exclude(status__in=[Analysis.Status.QUEUED, Analysis.Status.RUNNING])
    per_owner: dict[int, int] = {}
    for analysis in list(analyses.order_by("created")[:limit]):
        names = media.stored_names(analysis)
        with transaction.atomic():
            if mode == Retention.MEDIA:
                RemovedMedia.objects.create(analysis=analysis)
                Analysis.objects.filter(pk=analysis.pk).update(media="")
            else:
                analysis.delete()
            transaction.on_commit(lambda names=names: media.delete_files(names))
        per_owner[analysis.owner_id] = per_owner.get(analysis.owner_id, 0) + 1
    return per_owner


def purge_expired(*, now: datetime | None = None, limit: int = 1000) -> dict[str, int]:
    """Apply every account's retention (its own setting, else the site's): files or whole
    analyses older than their N days go; each account's log says how many. Run by Celery beat
    (``privacy.tasks.purge_expired``, every RETENTION_INTERVAL seconds). Returns the counts."""
    now = now or timezone.now()
    totals = {"media": 0, "all": 0, "events": 0}
    own = Profile.objects.exclude(retention__in=[Retention.DEFAULT])
    overrides = list(own.values_list("user_id", "retention", "retention_days"))
    jobs = [(Analysis.objects.filter(owner_id=uid), mode, days) for uid, mode, days in overrides]
    site = accounts.site_policy()
    jobs.append((Analysis.objects.exclude(owner_id__in=[uid for uid, _, _ in overrides]), site.mode, site.days))
    for analyses, mode, days in jobs:
        if mode not in (Retention.MEDIA, Retention.ALL):
            continue
        old = analyses.filter(created__lt=now - timedelta(days=days))
        for owner_id, count in _expire(old, mode=mode, now=now, limit=limit).items():
            totals[mode] += count
            kind = AccountEvent.Kind.EXPIRED_MEDIA if mode == Retention.MEDIA else AccountEvent.Kind.EXPIRED_ALL
            AccountEvent.objects.create(user_id=owner_id, kind=kind, count=count, detail=f"older than {days} days")
    totals["events"] = accounts.prune_events(now=now)
    return totals
