from django.apps import AppConfig


class RecognitionConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recognition"
    verbose_name = "Emotion recognition"

    def ready(self) -> None:
        from . import warmup

        # A web server loads the models before its first request (tests and commands do not).
        if warmup.serving_web():
            warmup.warm_up_in_background()
