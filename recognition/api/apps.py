from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API under /api/v1/ (DRF) and its OpenAPI schema: thin views over the other
    apps' services and selectors."""

    name = "recognition.api"
    label = "api"
