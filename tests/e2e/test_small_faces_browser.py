"""Faces too small to judge, as a person sees them: the result page of a photo with large and
tiny faces labels the tiny ones "too small to judge" on the photo and on their cards, in
headless Chromium against the real site (screenshot result-too-small.png)."""

from __future__ import annotations

import pytest

from ..test_alignment import small_and_large_faces_photo
from .test_error_messages_browser import result_page, shot, sign_in, site  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def test_tiny_faces_are_labelled_too_small_to_judge(site, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    from ..livesite import launch_chromium

    import cv2
    import numpy as np

    photo = tmp_path / "crowd.jpg"  # as a JPEG: under the size limit the shared site fixture sets
    canvas = cv2.imdecode(np.frombuffer(small_and_large_faces_photo(), np.uint8), cv2.IMREAD_COLOR)
    photo.write_bytes(cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, site, "/upload/")
        result_page(page, site, photo)
        tags = page.locator(".face-mark text").all_text_contents()
        small = [t for t in tags if t.endswith("too small to judge")]
        assert small and len(tags) - len(small) >= 6, tags
        badges = page.locator(".face-card .badge").all_inner_texts()
        assert badges.count("too small to judge") == len(small)
        shot(page, "result-too-small.png")
        assert errors == []
        browser.close()
