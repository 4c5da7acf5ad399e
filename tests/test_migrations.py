"""The split into apps migrates an existing database in place: Correction and AccountSettings
move from the ``recognition`` app to ``corrections`` with state-only migrations that keep their
tables, so a database made before the split (``recognition`` 0002, ``privacy`` 0001: main before
issue 30) keeps every row, and the models and the migrations agree."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from recognition.accounts.models import AccountEvent
from recognition.analyses.models import Analysis
from recognition.corrections.models import AccountSettings, Correction

BEFORE_THE_SPLIT = [("recognition", "0002_corrections"), ("privacy", "0001_initial"), ("corrections", None)]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_split_keeps_its_rows():
    loader = migrate(BEFORE_THE_SPLIT).loader
    loader.build_graph()  # what is applied now: main's migrations before the split
    assert ("corrections", "0001_initial") not in loader.applied_migrations
    old = loader.project_state(list(loader.applied_migrations)).apps
    User = old.get_model("auth", "User")
    owner = User.objects.create(username="before-the-split")
    analysis = old.get_model("recognition", "Analysis").objects.create(
        owner=owner, kind="image", status="done", emotion="happy", confidence=0.9, result={"faces": []}
    )
    old.get_model("recognition", "Correction").objects.create(
        owner=owner, analysis=analysis, item="face-1", task="face", label="sad", predicted="happy"
    )
    old.get_model("recognition", "AccountSettings").objects.create(user=owner, share_corrections=True)
    old.get_model("privacy", "AccountEvent").objects.create(user=owner, kind="sign_in")
    ContentType = old.get_model("contenttypes", "ContentType")
    moved_type = ContentType.objects.get_or_create(app_label="recognition", model="correction")[0]

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    executor = MigrationExecutor(connection)  # reads what is applied now
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    correction = Correction.objects.get()
    assert (correction.analysis_id, correction.item, correction.label, correction.predicted) == (
        analysis.pk, "face-1", "sad", "happy"
    )
    assert correction.owner.username == "before-the-split" and not correction.agreed
    assert AccountSettings.objects.get(user_id=owner.pk).share_corrections is True
    assert Analysis.objects.get(pk=analysis.pk).corrections.count() == 1
    assert AccountEvent.objects.filter(user_id=owner.pk, kind="sign_in").count() == 1
    # The same tables: nothing was copied or renamed.
    assert Correction._meta.db_table == "recognition_correction"
    assert AccountSettings._meta.db_table == "recognition_accountsettings"
    # The content type (and so its permissions) followed the model to its new app.
    from django.contrib.contenttypes.models import ContentType as CurrentContentType

    CurrentContentType.objects.clear_cache()
    assert CurrentContentType.objects.get(pk=moved_type.pk).app_label == "corrections"


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # SystemExit(1) on changes
    assert "No changes detected" in out.getvalue()
