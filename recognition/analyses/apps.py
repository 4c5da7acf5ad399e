from django.apps import AppConfig


class AnalysesConfig(AppConfig):
    """Uploads and their results. The label stays ``recognition`` (the app's name before the
    split), so its tables, migrations, content types and permissions keep their names."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "recognition.analyses"
    label = "recognition"
    verbose_name = "Emotion recognition"

    def ready(self) -> None:
        from recognition.analyses import (
            selectors,
            tasks,  # noqa: F401 - registers them: services send by name
        )
        from recognition.operations import metrics

        metrics.unfinished_source = selectors.unfinished_counts  # the queue gauges of /metrics
