"""Uploads in real headless Chromium against the real site under daphne (websockets included):
sign in, upload a photo, a group photo and a recording (one by drag-and-drop) through the page,
watch them finish, open the result with its face boxes, the history and the dashboard, and
save screenshots of each page (to test-artifacts/screenshots/, or SCREENSHOT_DIR)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ..conftest import MEDIA, SPEECH
from ..livesite import SHOTS, launch_chromium, shrink_png, site_with_user

pytestmark = pytest.mark.browser

USERNAME, PASSWORD = "uploader", "Upload-test-password-9"


@pytest.fixture
def site(tmp_path):
    with site_with_user(tmp_path, USERNAME, PASSWORD) as url:
        yield url


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on(
            "console", lambda msg: msg.type == "error" and page.errors.append(msg.text)
        )
        yield page
        browser.close()


def drop_file(page, selector: str, path: Path, mime: str) -> None:
    """Drag-and-drop a real file onto an element (a DataTransfer built in the page)."""
    data = base64.b64encode(path.read_bytes()).decode()
    page.evaluate(
        """([selector, name, mime, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: mime }));
            const target = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
              target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
            }
        }""",
        [selector, path.name, mime, data],
    )


def test_upload_to_results_in_a_real_browser(site, page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{site}/upload/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/upload/")

    # Two photos through the file chooser, a recording by drag-and-drop.
    page.set_input_files(
        "#id_files", [str(MEDIA / "12_angry_men.jpg"), str(MEDIA / "test_image.jpg")]
    )
    speech = SPEECH / "03-01-03-02-01-01-18.flac"
    drop_file(page, "#upload-form", speech, "audio/flac")
    page.wait_for_function(
        "document.querySelectorAll('.upload-item[data-status=done]').length === 3",
        timeout=240_000,
    )
    assert page.locator(".upload-item.is-error").count() == 0
    assert page.locator("#upload-summary").inner_text() == "3 of 3 analysed"
    page.screenshot(path=str(SHOTS / "upload.png"))

    # A photo's result: every face boxed and labelled over the (loaded) photo, one card each.
    page.locator(".upload-item", has_text="test_image.jpg").get_by_text(
        "See the result"
    ).click()
    page.wait_for_selector("svg.face-overlay .face-box")
    # The photo loads after the page (slowly on a busy machine): wait for it, then measure.
    page.wait_for_function(
        "document.getElementById('photo').complete && document.getElementById('photo').naturalWidth > 0"
    )
    boxes = page.locator("svg.face-overlay .face-box").count()
    assert boxes >= 4 and page.locator(".face-card").count() == boxes
    overlay = page.locator("svg.face-overlay").bounding_box()
    photo = page.locator("#photo").bounding_box()
    assert (
        abs(overlay["width"] - photo["width"]) < 2
        and abs(overlay["height"] - photo["height"]) < 2
    )
    page.locator(".face-card").first.hover()
    assert page.locator(".face-mark.is-active").count() == 1
    page.mouse.move(0, 0)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "result.png"), full_page=True)
    shrink_png(SHOTS / "result.png")

    # The recording's result: player, overall emotion and the timeline chart.
    page.goto(f"{site}/history/?kind=audio")
    page.locator(".file-link").first.click()
    page.wait_for_selector("audio#player")
    assert page.locator(".timeline-seg").count() >= 1
    if page.locator("#timeline-chart").count():  # several windows: the chart is drawn
        page.wait_for_function("window.Chart && Chart.getChart('timeline-chart')")
    page.screenshot(path=str(SHOTS / "result-audio.png"), full_page=True)

    page.goto(f"{site}/history/")
    assert page.locator("table.history-table tbody tr").count() == 3
    page.wait_for_function(
        "[...document.querySelectorAll('img.thumb')].length === 2 && "
        "[...document.querySelectorAll('img.thumb')].every((i) => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(SHOTS / "history.png"))

    page.goto(f"{site}/dashboard/")
    page.wait_for_function(
        "['chart-distribution', 'chart-modality', 'chart-time'].every((id) => Chart.getChart(id))"
    )
    assert page.locator(".stat").first.inner_text() == "3"
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

    assert page.errors == []
