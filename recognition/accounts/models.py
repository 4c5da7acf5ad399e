"""Data of the privacy features: per-account choices (consent, e-mail verification, retention),
the account log shown on the account page, and which analyses lost their file to retention.

Kept apart from ``recognition.models`` on purpose: the analyses do not change shape, so the
results pages and the API are untouched by these features.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Retention(models.TextChoices):
    DEFAULT = "default", "The site's default"
    KEEP = "keep", "Keep everything until I delete it"
    MEDIA = "media", "Delete the files after N days, keep the results"
    ALL = "all", "Delete the files and the results after N days"


class Profile(models.Model):
    """One per account, created at sign-up (or the first time a setting is saved).

    An account without a row, or with ``email_verification_required`` False, may upload: that is
    every account made by an administrator (``createsuperuser``, the admin, the shell) and every
    account that existed before sign-up asked for a verified address."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="privacy_profile")
    email_verification_required = models.BooleanField(default=False)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_version = models.CharField(max_length=16, blank=True)
    retention = models.CharField(max_length=8, choices=Retention.choices, default=Retention.DEFAULT)
    retention_days = models.PositiveIntegerField(
        default=90, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"privacy profile of user {self.user_id}"


class AccountEvent(models.Model):
    """What happened to an account, for its owner: sign-ins, tokens, two-factor changes and
    deletions. Kept ``ACCOUNT_EVENT_DAYS`` (90) days, then removed by the retention task."""

    class Kind(models.TextChoices):
        SIGN_IN = "sign_in", "Signed in"
        TOKEN_CREATED = "token_created", "API token created"
        TOKEN_REVOKED = "token_revoked", "API token revoked"
        TWO_FACTOR_ON = "2fa_on", "Two-factor sign-in turned on"
        TWO_FACTOR_OFF = "2fa_off", "Two-factor sign-in turned off"
        RECOVERY_USED = "recovery_used", "Recovery code used"
        RECOVERY_NEW = "recovery_new", "New recovery codes"
        EMAIL_VERIFIED = "email_verified", "E-mail address verified"
        DELETED = "deleted", "Analysis deleted"
        DELETED_ALL = "deleted_all", "All data deleted"
        EXPIRED_MEDIA = "expired_media", "Files deleted by retention"
        EXPIRED_ALL = "expired_all", "Analyses deleted by retention"
        RETENTION_CHANGED = "retention", "Retention setting changed"

    DELETIONS = (Kind.DELETED, Kind.DELETED_ALL, Kind.EXPIRED_MEDIA, Kind.EXPIRED_ALL)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    detail = models.CharField(max_length=200, blank=True)
    count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["user", "kind", "-created"])]

    def __str__(self) -> str:
        return f"{self.kind} of user {self.user_id} at {self.created:%Y-%m-%d %H:%M}"


class RemovedMedia(models.Model):
    """An analysis whose stored files retention deleted; its results stay."""

    analysis = models.OneToOneField("recognition.Analysis", on_delete=models.CASCADE, related_name="removed_media")
    removed = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"files of analysis {self.analysis_id} removed {self.removed:%Y-%m-%d}"
