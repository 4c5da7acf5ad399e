"""Fills the Django-free inference core's configuration (``recognition.inference.config``) from
the Django settings, and points its inference observer at the Prometheus metrics. Called when
the apps are ready and whenever a setting it reads changes (tests' ``settings`` fixture,
``override_settings``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from recognition.inference import config
from recognition.operations import metrics


def configure_from_settings() -> config.InferenceConfig:
    defaults = config.InferenceConfig()
    values = {
        attr: getattr(settings, name, getattr(defaults, attr))
        for name, attr in config.SETTING_NAMES.items()
    }
    return config.configure(**values, observe=metrics.observe_inference)


def on_setting_changed(*, setting: str, **_: Any) -> None:
    if setting in config.SETTING_NAMES:
        configure_from_settings()
