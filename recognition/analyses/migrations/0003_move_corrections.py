"""Correction and AccountSettings now belong to the ``corrections`` app (its 0001 takes them over
with the same tables): drop them from this app's state only, the tables stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("recognition", "0002_corrections"),
        ("corrections", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="Correction"),
                migrations.DeleteModel(name="AccountSettings"),
            ],
        ),
    ]
