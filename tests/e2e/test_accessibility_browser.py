"""Every page of the site through axe-core in real headless Chromium against the real site
under daphne: zero serious or critical accessibility violations, signed out and signed in, with
a photo and a recording in the history (their result pages and a delete confirmation too).
The API docs (Swagger UI, /api/docs/) too, with the template and styles of
templates/drf_spectacular/ and static/css/api-docs.css."""

from __future__ import annotations

import re

import pytest

from ..conftest import MEDIA, SPEECH
from ..livesite import launch_chromium, site_with_user
from .axe import describe, violations

pytestmark = pytest.mark.browser

USERNAME, PASSWORD = "a11y", "Accessible-test-password-9"
SIGNED_OUT = ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password_reset/"]
SIGNED_IN = [
    "/upload/",
    "/history/",
    "/dashboard/",
    "/corrections/",
    "/live/",
    "/accounts/password_change/",
    "/account/delete-data/",
    "/account/delete/",
    "/account/",  # privacy: account page, two-factor pages
    "/accounts/two-factor/",
    "/accounts/two-factor/setup/",
    "/api/docs/",
]


@pytest.fixture
def site(tmp_path):
    with site_with_user(tmp_path, USERNAME, PASSWORD) as url:
        yield url


def test_every_page_has_no_serious_accessibility_violations(site):
    from playwright.sync_api import sync_playwright

    checked: dict[str, list[dict]] = {}

    def check(page, label: str) -> None:
        page.wait_for_load_state("networkidle")
        checked[label] = violations(page, site)

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(60_000)
        for path in SIGNED_OUT:
            page.goto(f"{site}{path}")
            check(page, path)

        page.goto(f"{site}/accounts/login/?next=/upload/")
        page.fill("#id_username", USERNAME)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{site}/upload/")
        page.set_input_files(
            "#id_files",
            [str(MEDIA / "test_image.jpg"), str(SPEECH / "03-01-03-02-01-01-18.flac")],
        )
        page.wait_for_function(
            "document.querySelectorAll('.upload-item[data-status=done]').length === 2",
            timeout=180_000,
        )
        check(page, "/upload/ with results")
        results = [
            a.get_attribute("href")
            for a in page.locator(".upload-item a", has_text="See the result").all()
        ]
        for path in SIGNED_IN + results:
            page.goto(f"{site}{path}")
            if re.search(r"/analyses/\d+/$", path):
                page.wait_for_selector(".result-stack, .audio-player")
            if path == "/api/docs/":  # Swagger UI drew the operations
                page.wait_for_selector(".swagger-ui .opblock")
            check(page, path)
        # A correction through the result page's form; the pages that show corrections then
        # have their tables and badges (issue 18).
        page.goto(f"{site}{results[0]}")
        page.select_option("#corrections select >> nth=0", index=1)
        page.click("#corrections button[type=submit] >> nth=0")
        page.wait_for_url(re.compile(r".*#corrections$"))
        check(page, "result with a correction")
        page.goto(f"{site}/corrections/")
        check(page, "/corrections/ with a correction")
        page.goto(f"{site}/dashboard/")
        check(page, "/dashboard/ with a correction")
        page.goto(f"{site}{results[0]}delete/")
        check(page, "delete confirmation")
        browser.close()

    assert len(checked) == len(SIGNED_OUT) + len(SIGNED_IN) + 7
    failing = {label: found for label, found in checked.items() if found}
    assert not failing, "\n".join(f"{k}:\n{describe(v)}" for k, v in failing.items())
