"""Correction and AccountSettings move from the ``recognition`` app to ``corrections``.

State only: the tables keep their names (``recognition_correction``,
``recognition_accountsettings``) and their rows; ``recognition`` 0003 drops the two models from its
own state. The content types are relabelled, so the rows' permissions follow the models."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ("correction", "accountsettings")


def relabel_content_types(apps, schema_editor, *, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def forwards(apps, schema_editor):
    relabel_content_types(apps, schema_editor, old="recognition", new="corrections")


def backwards(apps, schema_editor):
    relabel_content_types(apps, schema_editor, old="corrections", new="recognition")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("recognition", "0002_corrections"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="AccountSettings",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("share_corrections", models.BooleanField(default=False)),
                        ("updated", models.DateTimeField(auto_now=True)),
                        ("user", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="account_settings", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "db_table": "recognition_accountsettings",
                        "verbose_name_plural": "account settings",
                    },
                ),
                migrations.CreateModel(
                    name="Correction",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("item", models.CharField(max_length=24)),
                        ("task", models.CharField(max_length=8)),
                        ("label", models.CharField(max_length=16)),
                        ("predicted", models.CharField(blank=True, max_length=16)),
                        ("confidence", models.FloatField(blank=True, null=True)),
                        ("model_name", models.CharField(blank=True, max_length=64)),
                        ("model_version", models.CharField(blank=True, max_length=32)),
                        ("ref", models.JSONField(blank=True, default=dict)),
                        ("created", models.DateTimeField(auto_now_add=True)),
                        ("updated", models.DateTimeField(auto_now=True)),
                        ("analysis", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="corrections", to="recognition.analysis")),
                        ("owner", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="corrections", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "db_table": "recognition_correction",
                        "ordering": ["-updated", "-id"],
                        "indexes": [models.Index(fields=["owner", "-updated"], name="recognition_owner_i_b270ab_idx")],
                        "constraints": [models.UniqueConstraint(fields=("analysis", "item"), name="one_correction_per_item")],
                    },
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
