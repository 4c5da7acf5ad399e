"""The recording result's timeline chart in real headless Chromium: its x axis runs from 0 to
the end of the clip, and a 4.4 s clip with one window of speech is one span across it."""

from __future__ import annotations

import pytest

from ..conftest import SPEECH
from ..livesite import SHOTS, launch_chromium, site_with_user

pytestmark = pytest.mark.browser

USERNAME, PASSWORD = "timeline", "Timeline-test-password-9"
SHORT_CLIP = SPEECH / "03-01-05-02-02-01-20.flac"  # 4.4 s, one window of speech


@pytest.fixture
def site(tmp_path):
    with site_with_user(tmp_path, USERNAME, PASSWORD) as url:
        yield url


def test_a_short_clip_is_charted_as_one_span_from_0_to_its_end(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{site}/accounts/login/?next=/upload/")
        page.fill("#id_username", USERNAME)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{site}/upload/")
        page.set_input_files("#id_files", [str(SHORT_CLIP)])
        page.wait_for_selector(".upload-item[data-status=done]", timeout=120_000)
        page.get_by_text("See the result").click()
        page.wait_for_function("window.Chart && Chart.getChart('timeline-chart')")
        chart = page.evaluate(
            """() => {
                const c = Chart.getChart('timeline-chart');
                const x = c.scales.x;
                return {min: x.min, max: x.max,
                        xs: c.data.datasets[0].data.map((d) => d.x),
                        ys: c.data.datasets.map((d) => d.data.map((p) => p.y))};
            }"""
        )
        duration = page.evaluate(
            "JSON.parse(document.getElementById('analysis-config').textContent).spans[0].end"
        )
        assert duration == pytest.approx(4.4, abs=0.05)
        assert chart["min"] == 0 and chart["max"] == pytest.approx(duration)
        assert chart["xs"] == [0, duration]  # one span: flat from 0 to the end
        assert all(len(set(ys)) == 1 and ys[0] is not None for ys in chart["ys"])
        strip = page.locator(".timeline-strip").bounding_box()
        seg = page.locator(".timeline-seg").bounding_box()
        assert page.locator(".timeline-seg").count() == 1
        assert abs(seg["x"] - strip["x"]) < 2 and abs(seg["width"] - strip["width"]) < 2
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "result-audio-short.png"), full_page=True)
        assert errors == []
        browser.close()
