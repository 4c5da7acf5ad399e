"""The Content-Security-Policy in real headless Chromium against the real site under daphne:
every page (signed out, signed in, each kind of result, the API docs) is sent the strict policy
and runs without a single violation (tests/e2e/conftest.py fails any browser test on one; this
test names the page), the site's own websockets connect, and a violation Chromium reports
reaches /csp-report/ and is logged."""

from __future__ import annotations

import time

import pytest

from .. import livesite

pytestmark = pytest.mark.browser

SIGNED_OUT = {"home": "/", "sign-up": "/accounts/signup/", "log-in": "/accounts/login/"}
SIGNED_IN = {
    "upload": "/upload/",
    "history": "/history/",
    "dashboard": "/dashboard/",
    "live": "/live/",
    "API docs": "/api/docs/",
    "API docs (ReDoc)": "/api/redoc/",
}
# What each page must have drawn before it counts as loaded (scripts ran, charts drew).
READY = {
    "dashboard": "window.Chart && Chart.getChart('chart-time')",
    "audio result": "window.Chart && Chart.getChart('timeline-chart')",
    "video result": "window.Chart && Chart.getChart('video-chart')",
    "API docs": "document.querySelector('.swagger-ui .info .title') && document.querySelectorAll('.opblock').length > 5",
    "API docs (ReDoc)": "document.querySelectorAll('[data-section-id]').length > 5",
}


def policy(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_strict(header: str | None, label: str) -> None:
    assert header, f"{label}: no Content-Security-Policy header"
    csp = policy(header)
    scripts = csp.get("script-src", csp.get("default-src"))
    assert "'self'" in scripts, label
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "blob:"} & set(scripts), (label, scripts)
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"], label
    assert csp["base-uri"] == ["'none'"] and csp["report-uri"] == ["/csp-report/"], label
    assert "'self'" in csp["connect-src"] and any(s.startswith("ws://127.0.0.1:") for s in csp["connect-src"]), label
    if label != "API docs (ReDoc)":  # ReDoc writes <style> elements (styled-components)
        assert "'unsafe-inline'" not in csp["style-src-elem"], label


def test_every_page_has_the_policy_and_no_violation(seeded_site):
    from playwright.sync_api import sync_playwright

    pages = dict(SIGNED_OUT)
    pages.update(SIGNED_IN)
    pages.update({f"{kind} result": path for kind, path in seeded_site.results.items()})
    violations: dict[str, list[str]] = {}
    headers: dict[str, str] = {}
    with sync_playwright() as p:
        browser = livesite.launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(120_000)
        for label, path in pages.items():
            if label == "upload":
                seeded_site.sign_in(page)
            response = page.goto(f"{seeded_site.url}{path}")
            assert response.status == 200, (label, response.status)
            headers[label] = response.headers.get("content-security-policy")
            assert_strict(headers[label], label)
            page.wait_for_load_state("networkidle")
            if label in READY:
                page.wait_for_function(READY[label])
            page.wait_for_timeout(300)  # console messages and events of the last moment
            if livesite.CSP_VIOLATIONS:
                violations[label] = list(livesite.CSP_VIOLATIONS)
                livesite.CSP_VIOLATIONS.clear()

        # The site's own websocket (the status socket of the upload and result pages) connects.
        page.goto(f"{seeded_site.url}/upload/")
        opened = page.evaluate(
            """() => new Promise((resolve) => {
                const ws = new WebSocket(`ws://${location.host}/ws/analyses/`);
                ws.onopen = () => { ws.close(); resolve(true); };
                ws.onerror = () => resolve(false);
            })"""
        )
        assert opened
        browser.close()
    assert len(headers) == len(SIGNED_OUT) + len(SIGNED_IN) + 4
    assert not violations, "\n".join(f"{k}: {v}" for k, v in violations.items())


def test_a_violation_is_reported_and_logged(seeded_site):
    """An injected inline script is refused, and Chromium's report reaches the report view."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = livesite.launch_chromium(p)
        page = browser.new_page()
        page.set_default_timeout(120_000)
        page.goto(f"{seeded_site.url}/accounts/login/")
        ran = page.evaluate(
            """() => {
                window.injected = false;
                const s = document.createElement("script");
                s.textContent = "window.injected = true";
                document.body.append(s);
                return window.injected;
            }"""
        )
        assert ran is False
        deadline = time.monotonic() + 20
        while "CSP violation" not in seeded_site.site.log_tail(20_000) and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        browser.close()
    log = seeded_site.site.log_tail(20_000)
    assert "CSP violation" in log and "effective-directive=script-src-elem" in log, log[-2000:]
    assert any("script-src" in v for v in livesite.CSP_VIOLATIONS)  # the helper saw it too
    livesite.CSP_VIOLATIONS.clear()  # expected here
