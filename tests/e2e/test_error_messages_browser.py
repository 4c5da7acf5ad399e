"""Errors a person can act on, in real headless Chromium against the real site under daphne:
an unsupported file, a file over the size limit, a photo with no face, a silent recording and
the live page without camera permission each say what happened and what to do. One screenshot
each (error-*.png in test-artifacts/screenshots/, or SCREENSHOT_DIR=docs/screenshots)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from ..conftest import MEDIA, SPEECH
from ..livesite import SHOTS, launch_chromium, shrink_png, site_with_user
from ..media_convert import encode_audio, read_pcm

pytestmark = pytest.mark.browser

USERNAME, PASSWORD = "errors", "Errors-test-password-9"
LIMIT_BYTES = 300_000  # test_image.jpg (503 KiB) is over it, the other inputs under it


@pytest.fixture
def site(tmp_path):
    (tmp_path / "site").mkdir()  # tmp_path itself holds the test's own files
    with site_with_user(tmp_path / "site", USERNAME, PASSWORD, MAX_UPLOAD_BYTES=str(LIMIT_BYTES)) as url:
        yield url


@pytest.fixture
def inputs(tmp_path):
    """Real inputs: a text file, a photo over the limit, the view beside the people of
    test_image.jpg (no face), and the room tone before the words of a RAVDESS clip (no speech)."""
    view = tmp_path / "view.jpg"
    Image.open(MEDIA / "test_image.jpg").crop((1780, 150, 2048, 1100)).save(
        view, quality=90
    )
    signal, rate = read_pcm(SPEECH / "03-01-01-01-01-01-18.flac")
    quiet = tmp_path / "quiet.wav"
    quiet.write_bytes(encode_audio(np.tile(signal[: int(0.7 * rate)], 4), rate, "wav"))
    return {
        "text": MEDIA / "README.md",
        "large": MEDIA / "test_image.jpg",
        "no_face": view,
        "silent": quiet,
    }


def sign_in(page, site: str, then: str) -> None:
    page.goto(f"{site}/accounts/login/?next={then}")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}{then}")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))
    shrink_png(SHOTS / name)


def refused_row(page, site: str, path) -> str:
    page.goto(f"{site}/upload/")  # a fresh list for each screenshot
    page.set_input_files("#id_files", [str(path)])
    row = page.locator(".upload-item.is-error")
    row.wait_for()
    return row.locator(".upload-detail").inner_text()


def result_page(page, site: str, path) -> None:
    page.goto(f"{site}/upload/")
    page.set_input_files("#id_files", [str(path)])
    page.wait_for_selector(".upload-item[data-status=done]", timeout=120_000)
    page.get_by_text("See the result").click()
    page.wait_for_url(re.compile(r".*/analyses/\d+/$"))


def test_each_error_says_what_happened_and_what_to_do(site, inputs):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, site, "/upload/")

        text = refused_row(page, site, inputs["text"])
        assert "This file type is not supported" in text
        assert "Upload a photo (JPEG" in text and "a recording (WAV" in text
        shot(page, "error-unsupported-file.png")

        text = refused_row(page, site, inputs["large"])
        assert "The file is too large (503 KB); the limit is 293 KB." in text
        assert "Upload a smaller file" in text
        shot(page, "error-file-too-large.png")

        result_page(page, site, inputs["no_face"])
        help_text = page.inner_text("#no-face-help")
        assert "No face was found in this photo" in help_text
        assert (
            "turned towards the camera" in help_text
            and "Upload another photo" in help_text
        )
        assert page.locator(".face-box").count() == 0
        shot(page, "error-no-face.png")

        result_page(page, site, inputs["silent"])
        help_text = page.inner_text("#no-speech-help")
        assert "No speech was heard in this recording (2.8 s)" in help_text
        assert "record again" in help_text and "microphone" in help_text
        shot(page, "error-no-speech.png")

        # A camera exists (Chromium's fake device) but the site may not use it: headless
        # Chromium refuses the permission prompt, as a person pressing "Block" does.
        blocked = launch_chromium(p, "--use-fake-device-for-media-stream")
        page = blocked.new_page(viewport={"width": 1280, "height": 800})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, site, "/live/")
        page.click("#live-start")
        page.wait_for_function(
            "document.getElementById('live').dataset.state === 'error'", timeout=20_000
        )
        message = page.inner_text("#live-message")
        assert "Camera access was blocked" in message
        assert "Allow the camera for this site" in message and "Start camera" in message
        assert page.is_enabled("#live-start")
        shot(page, "error-live-camera-blocked.png")
        blocked.close()

        assert errors == []
        browser.close()
