"""Top-level routes: each app's urls.py, the API schema and its two viewers. Uploaded media has
no public URL: it is served by owner-checked views (recognition/analyses)."""

from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from emotionsite import views

urlpatterns = [
    # healthz, readyz, metrics, csp-report
    path("", include("recognition.operations.urls")),
    # Corrections moved from the recognition app to their own: old admin bookmarks still work.
    path("admin/", include([re_path(
        r"^recognition/(?P<rest>(?:correction|accountsettings)/.*)$",
        staff_member_required(RedirectView.as_view(url="/admin/corrections/%(rest)s", query_string=True)),
    )])),
    path("admin/", admin.site.urls),
    # Sign-up, log-in, password views, the account page, two-factor sign-in, e-mail verification
    path("", include("recognition.accounts.urls")),
    path("api/v1/", include("recognition.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI with its init script as a static-like file (no inline script: CSP).
    path(
        "api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"
    ),
    # ReDoc writes its styles as <style> elements, runs its search in a blob: worker and shows
    # its maker's logo; its scripts stay under the strict script-src (no inline script, no eval).
    path(
        "api/redoc/",
        csp_update({"style-src-elem": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"],
                    "img-src": ["https://cdn.redoc.ly"]})(
            SpectacularRedocView.as_view(url_name="schema")
        ),
        name="api-redoc",
    ),
    path("", views.home, name="home"),
    path("", include("recognition.live.urls")),
    path("", include("recognition.analyses.urls")),
    path("", include("recognition.corrections.urls")),
]
