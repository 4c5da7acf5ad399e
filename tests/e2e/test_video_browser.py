"""A video in real headless Chromium against the real site (daphne, eager tasks): upload a
talking video made from the test photo and a speech clip, open its result, check the player
shows boxes at the current time and that clicking the timeline seeks the video; saves
test-artifacts/screenshots/result-video.png (or SCREENSHOT_DIR)."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.video_media import make_video

from ..livesite import SHOTS
from .test_upload_browser import PASSWORD, USERNAME, page, site  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

OVERLAY_PIXELS = """() => {
  const c = document.getElementById('video-overlay');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
}"""


def test_video_result_in_a_real_browser(site, page, tmp_path):  # noqa: F811 - fixtures
    clip = tmp_path / "party.mp4"
    clip.write_bytes(make_video(seconds=3.0))
    page.goto(f"{site}/upload/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/upload/")
    page.set_input_files("#id_files", [str(clip)])
    page.wait_for_selector(".upload-item[data-status=done]", timeout=240_000)
    page.get_by_text("See the result").click()

    page.wait_for_function("window.Chart && Chart.getChart('video-chart')")
    page.wait_for_function("document.getElementById('video-player').readyState >= 2")
    assert page.locator(".badge-lg").count() == 1
    for source in ("face", "voice", "fused"):
        assert (
            page.locator(
                f'.timeline-strip[data-source="{source}"] .timeline-seg'
            ).count()
            == 12
        )
    assert page.locator(".track-item").count() >= 4

    # Clicking the fused strip at 2 s seeks there (not: plays from 0 until 2 s) and plays; the
    # boxes of that moment are drawn over the picture.
    player = "document.getElementById('video-player')"
    page.evaluate(f"{player}.playbackRate = 0.25")
    page.locator('.timeline-strip[data-source="fused"] .timeline-seg').nth(8).click()
    page.wait_for_function(f"!{player}.seeking && !{player}.paused")
    page.evaluate(f"{player}.pause()")
    assert 1.9 <= page.evaluate(f"{player}.currentTime") <= 2.4
    assert page.evaluate(OVERLAY_PIXELS) > 1000
    assert "fused:" in page.locator("#video-now").inner_text()

    # A person jumps to their first appearance.
    page.locator(".track-item").first.click()
    page.wait_for_function(f"!{player}.seeking && {player}.currentTime < 0.5")
    page.evaluate(f"{player}.pause()")

    # The moment shown in the screenshot: voice and face both present.
    page.locator('.timeline-strip[data-source="fused"] .timeline-seg').nth(6).click()
    page.wait_for_function(f"!{player}.seeking && {player}.currentTime >= 1.5")
    page.evaluate(f"{player}.pause(); window.scrollTo(0, 0)")
    page.mouse.move(0, 0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "result-video.png"
    page.screenshot(path=str(shot), full_page=True)
    Image.open(shot).convert("RGB").quantize(256).save(shot, optimize=True)  # small PNG
    assert page.errors == []
