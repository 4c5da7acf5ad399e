"""Data of the corrections: a person's true emotion for an item of one of their analyses, and
whether they share their corrections with the training pool.

Both tables were created by the ``recognition`` app (migration 0002) and keep their names
(``db_table``): ``recognition.analyses`` gave the models to this app with a state-only migration
(``corrections/migrations/0001_initial.py``), so an existing database is not touched.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Correction(models.Model):
    """A person's true emotion for one item of one of their analyses: a face of a photo
    (``face-<n>``), a tracked person of a video (``track-<id>``), a recording (``recording``) or
    one of its windows (``window-<n>``), a live session (``session``). ``ref`` is where the item
    is (``box``, ``t``, ``start``/``end``); the model's answer and version are copied from the
    result when the correction is made, so agreement is measured against what was served.
    Deleted with its analysis (and so with "delete all my data")."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="corrections")
    analysis = models.ForeignKey("recognition.Analysis", on_delete=models.CASCADE, related_name="corrections")
    item = models.CharField(max_length=24)
    task = models.CharField(max_length=8)  # face or voice: which model's classes apply
    label = models.CharField(max_length=16)
    predicted = models.CharField(max_length=16, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    model_name = models.CharField(max_length=64, blank=True)
    model_version = models.CharField(max_length=32, blank=True)
    ref = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "recognition_correction"
        ordering = ["-updated", "-id"]
        constraints = [models.UniqueConstraint(fields=["analysis", "item"], name="one_correction_per_item")]
        indexes = [models.Index(fields=["owner", "-updated"], name="recognition_owner_i_b270ab_idx")]

    def __str__(self) -> str:
        return f"{self.analysis_id}/{self.item}: {self.label}"

    @property
    def agreed(self) -> bool:
        return self.predicted == self.label


class AccountSettings(models.Model):
    """Per-account choices. ``share_corrections``: the person's corrections go into the shared
    pool an administrator exports for training (off by default; turning it off takes them out
    of every later export)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_settings")
    share_corrections = models.BooleanField(default=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "recognition_accountsettings"
        verbose_name_plural = "account settings"

    def __str__(self) -> str:
        return f"settings of user {self.user_id}"
