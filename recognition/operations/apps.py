from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """What operators need: probes, metrics, logs, request ids, CSP; and the wiring of the
    Django-free inference core to the settings (``inference.config``) and to the metrics."""

    name = "recognition.operations"
    label = "operations"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from recognition.operations import inference_config, warmup

        inference_config.configure_from_settings()
        setting_changed.connect(inference_config.on_setting_changed, dispatch_uid="inference-config")
        # A web server loads the models before its first request (tests and commands do not).
        if warmup.serving_web():
            warmup.warm_up_in_background()
