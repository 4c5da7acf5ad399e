from django.apps import AppConfig


class CorrectionsConfig(AppConfig):
    """A person's true emotions for the items of their results, the models' agreement with
    them, sharing and the training dataset."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "recognition.corrections"
    label = "corrections"
