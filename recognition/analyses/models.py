"""Data only: what was uploaded, by whom, and what the models said about it.

The full result is kept as JSON in exactly the shape the API returns (``result``), and the
headline (``emotion``, ``confidence``) is denormalised into columns so history filters and
dashboards are plain queries.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


def analysis_upload_to(instance: "Analysis", filename: str) -> str:
    """Per-user private path; the stored name is random, the original name is kept in a field."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    suffix = "".join(c for c in suffix if c.isalnum())[:8] or "bin"
    return f"users/{instance.owner_id}/{instance.uid.hex}.{suffix}"


class Analysis(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        AUDIO = "audio", "Audio"
        VIDEO = "video", "Video"
        LIVE = "live", "Live session"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="analyses")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    original_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    media = models.FileField(upload_to=analysis_upload_to, max_length=255, blank=True)
    error = models.TextField(blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Headline result, denormalised for filters and charts; None until done or when nothing found.
    emotion = models.CharField(max_length=16, blank=True, db_index=True)
    confidence = models.FloatField(null=True, blank=True)
    face_count = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    models_used = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["owner", "-created"]), models.Index(fields=["owner", "kind"])]
        verbose_name_plural = "analyses"

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"
