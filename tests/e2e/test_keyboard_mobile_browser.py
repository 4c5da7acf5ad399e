"""Keyboard, text alternatives and phone width in real headless Chromium against the real site:
the upload drop zone and the live controls work from the keyboard alone, every chart has a text
alternative (a table it is described by), and every page at 375 px wide (a phone) has no
horizontal scrolling; its screenshots are saved to test-artifacts/screenshots/phone/ (or
SCREENSHOT_DIR/phone) for a person to look at."""

from __future__ import annotations

import pytest

from .. import livesite
from ..conftest import MEDIA
from .test_csp_browser import READY, SIGNED_IN, SIGNED_OUT

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}


def tab_to(page, element_id: str = "", limit: int = 60, back: bool = False, text: str = "") -> None:
    """Press Tab (Shift+Tab) until the element with this id (or a link with this text) has the
    focus, as a keyboard user would."""
    for _ in range(limit):
        active = page.evaluate("document.activeElement ? [document.activeElement.id, document.activeElement.textContent] : ['', '']")
        if (element_id and active[0] == element_id) or (text and text in active[1]):
            return
        page.keyboard.press("Shift+Tab" if back else "Tab")
    raise AssertionError(f"Tab never reached #{element_id or text}")


def test_upload_drop_zone_works_from_the_keyboard(seeded_site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = livesite.launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(120_000)
        # Playwright turns on file-chooser interception when a page gets its first "filechooser"
        # listener, without waiting for the browser to confirm; a key pressed right after
        # expect_file_chooser() could beat it and open an unintercepted dialog (no event: the
        # test failed about 1 run in 4). A listener for the page's whole life, added before the
        # sign-in's round trips, has interception on before any key is pressed.
        opened = []
        page.on("filechooser", lambda chooser: opened.append(chooser))
        seeded_site.sign_in(page)
        tab_to(page, "id_files")
        # The whole drop zone shows the focus.
        outline = page.evaluate("getComputedStyle(document.getElementById('upload-form')).outlineStyle")
        assert outline not in ("", "none")
        name = page.evaluate("document.getElementById('id_files').labels[0].textContent.trim()")
        assert name == "choose them"
        for key in ("Enter", " "):
            with page.expect_file_chooser() as chooser:
                page.keyboard.press(key)
            assert chooser.value.is_multiple()
        assert len(opened) == 2
        chooser.value.set_files(str(MEDIA / "test_image.jpg"))
        page.wait_for_selector(".upload-item[data-status=done]", timeout=180_000)
        # The file chooser gave the focus back to the drop zone; the result link is a few stops on.
        assert page.evaluate("document.activeElement.id") == "id_files"
        tab_to(page, text="See the result", limit=10)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{seeded_site.url}/analyses/*/")
        browser.close()


def test_live_controls_work_from_the_keyboard(seeded_site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = livesite.launch_chromium(
            p, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"
        )
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(120_000)
        seeded_site.sign_in(page, "/live/")
        state = "document.getElementById('live').dataset"
        tab_to(page, "live-start")
        page.keyboard.press("Enter")
        page.wait_for_function(f"{state}.state === 'live' && Number({state}.frames) > 0")
        # Start camera is disabled now: the focus moved on to Stop and save, not to the top.
        assert page.evaluate("document.activeElement.id") == "live-stop"
        tab_to(page, "live-mic", limit=3)
        page.keyboard.press(" ")
        page.wait_for_function(f"document.getElementById('live-mic').checked && {state}.voice !== ''")
        tab_to(page, "live-stop", limit=3, back=True)
        page.keyboard.press("Enter")
        page.wait_for_function(f"{state}.saved !== ''")
        assert page.evaluate("document.activeElement.id") == "live-start"
        browser.close()


def all_pages(seeded_site) -> dict[str, str]:
    pages = dict(SIGNED_OUT)
    pages.update(SIGNED_IN)
    pages.update({f"{kind} result": path for kind, path in seeded_site.results.items()})
    return pages


CHARTS = """() => [...document.querySelectorAll('main canvas, main svg')]
  .filter((el) => !el.closest('[aria-hidden=true]'))
  .map((el) => {
    const described = (el.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean)
      .map((id) => document.getElementById(id)).filter(Boolean);
    return {
      id: el.id || el.getAttribute('class'), tag: el.tagName.toLowerCase(),
      role: el.getAttribute('role'), name: el.getAttribute('aria-label') || '',
      tableRows: described.reduce((n, d) => n + d.querySelectorAll('table tbody tr').length, 0),
    };
  })"""


def test_every_chart_has_a_text_alternative(seeded_site):
    from playwright.sync_api import sync_playwright

    found: dict[str, list[dict]] = {}
    with sync_playwright() as p:
        browser = livesite.launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(120_000)
        seeded_site.sign_in(page, "/dashboard/")
        for label in ("dashboard", "image result", "audio result", "video result", "live result", "live"):
            path = "/dashboard/" if label == "dashboard" else all_pages(seeded_site)[label]
            page.goto(f"{seeded_site.url}{path}")
            if label in READY:
                page.wait_for_function(READY[label])
            found[label] = page.evaluate(CHARTS)
        browser.close()
    charts = [(label, c) for label, items in found.items() for c in items]
    assert len([c for _, c in charts if c["tag"] == "canvas"]) >= 5  # 3 dashboard, audio, video
    for label, chart in charts:
        assert chart["role"] == "img" and chart["name"].strip(), (label, chart)
        if chart["tag"] == "canvas":  # a chart: its numbers in a table it is described by
            assert chart["tableRows"] >= 1, (label, chart)


def test_every_page_fits_a_phone(seeded_site):
    from playwright.sync_api import sync_playwright

    shots = livesite.SHOTS / "phone"
    shots.mkdir(parents=True, exist_ok=True)
    too_wide: dict[str, int] = {}
    with sync_playwright() as p:
        browser = livesite.launch_chromium(p)
        page = browser.new_page(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)
        page.set_default_timeout(120_000)
        for label, path in all_pages(seeded_site).items():
            if label == "upload":
                seeded_site.sign_in(page)
            page.goto(f"{seeded_site.url}{path}")
            page.wait_for_load_state("networkidle")
            if label in READY:
                page.wait_for_function(READY[label])
            width = page.evaluate("document.scrollingElement.scrollWidth")
            if width > PHONE["width"] + 1:
                too_wide[label] = width
            shot = shots / f"{label.replace(' ', '-').replace('(', '').replace(')', '')}.png"
            page.screenshot(path=str(shot), full_page=True)
            livesite.shrink_png(shot)
        browser.close()
    assert not too_wide, f"wider than {PHONE['width']} px (scrollWidth): {too_wide}"
