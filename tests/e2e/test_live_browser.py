"""The live page in real headless Chromium with a fake camera (a Y4M video of a real photo)
against the real site under daphne: sign in, see boxes and labels, survive a server restart,
stop and find the session in history; a denied camera says so."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import MEDIA
from ..livesite import CHROMIUM, SHOTS, Site, launch_chromium, shrink_png

pytestmark = pytest.mark.browser

SCREENSHOT = SHOTS / "live.png"
VOICE_LABELS = {
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
}
USERNAME, PASSWORD = "livetester", "Live-test-password-9"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not shutil.which("ffmpeg") or not Path(CHROMIUM).exists():
        pytest.fail(
            "ffmpeg and /usr/bin/chromium are needed (scripts/test installs them)"
        )
    data_dir = tmp_path_factory.mktemp("live-site")
    server = Site(data_dir)
    server.manage("migrate", "--noinput")
    server.create_user(USERNAME, PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def camera_video(tmp_path_factory) -> Path:
    """A 2-second 640x480 Y4M clip of the test photo; Chromium loops it as the camera."""
    path = tmp_path_factory.mktemp("camera") / "face.y4m"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-loop",
            "1",
            "-i",
            str(MEDIA / "test_image.jpg"),
            "-vf",
            "scale=640:480,format=yuv420p",
            "-r",
            "15",
            "-t",
            "2",
            "-y",
            str(path),
        ],
        check=True,
    )
    return path


def sign_in(page, site: Site) -> None:
    page.goto(f"{site.url}/accounts/login/?next=/live/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.wait_for_url(re.compile(r".*/live/$"))


def live_data(page) -> dict:
    return page.eval_on_selector("#live", "el => ({...el.dataset})")


def test_live_page_shows_faces_survives_a_restart_and_saves(site, camera_video):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(
            p,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_video}",
        )
        page = browser.new_page(viewport={"width": 1200, "height": 820})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, site)
        page.click("#live-start")
        # The first frame waits for the server to load TensorFlow and the model.
        page.wait_for_function(
            "() => { const d = document.getElementById('live').dataset;"
            " return d.state === 'live' && Number(d.faces) > 0 && d.labels.length > 0 && Number(d.frames) >= 5; }",
            timeout=180_000,
        )
        data = live_data(page)
        labels = data["labels"].split(",")
        assert labels and all(
            label in {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}
            for label in labels
        )
        assert float(data["fps"]) > 0 and int(data["rtt"]) > 0
        assert page.locator("#live-faces .badge").count() == int(data["faces"])
        # The overlay canvas has drawn something (boxes/labels) over the video.
        drawn = page.evaluate(
            "() => { const c = document.getElementById('live-overlay');"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"
        )
        assert drawn > 500
        page.wait_for_timeout(
            3000
        )  # steady state (the first answers include loading the model)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
        shrink_png(SCREENSHOT)

        # Server restart: the page says it lost the connection, reconnects and goes on.
        site.stop()
        page.wait_for_function(
            "() => document.getElementById('live').dataset.state === 'reconnecting'",
            timeout=20_000,
        )
        assert "connection" in page.inner_text("#live-message").lower()
        site.start()
        # A restarted server has lost the session: the page says so and starts again.
        page.wait_for_function(
            "() => { const d = document.getElementById('live').dataset;"
            " return d.state === 'live' && Number(d.frames) >= 3 && d.labels.length > 0; }",
            timeout=180_000,
        )
        assert live_data(page)["reconnected"] == "restarted"

        # Microphone: Chromium's fake device plays a tone; every 2 s chunk gets a voice answer.
        page.check("#live-mic")
        page.wait_for_function(
            "() => !['', 'listening'].includes(document.getElementById('live').dataset.voice)",
            timeout=60_000,
        )
        voice = live_data(page)["voice"]
        assert voice == "silence" or voice in VOICE_LABELS, voice

        page.click("#live-stop")
        page.wait_for_function(
            "() => document.getElementById('live').dataset.saved !== ''", timeout=30_000
        )
        saved = live_data(page)
        assert saved["state"] == "stopped"
        assert "Saved to your history" in page.inner_text("#live-message")
        assert int(page.inner_text("#live-count")) >= 3
        response = page.goto(f"{site.url}/analyses/{saved['saved']}/")
        assert response.status == 200
        history = page.goto(f"{site.url}/history/")
        assert (
            history.status == 200 and f"/analyses/{saved['saved']}/" in page.content()
        )
        assert not errors, errors
        browser.close()


def test_a_denied_camera_is_explained(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)  # no fake UI: the permission prompt is refused
        page = browser.new_page()
        sign_in(page, site)
        page.click("#live-start")
        page.wait_for_function(
            "() => document.getElementById('live').dataset.state === 'error'",
            timeout=20_000,
        )
        message = page.inner_text("#live-message")
        assert "camera" in message.lower() and (
            "blocked" in message.lower() or "no camera" in message.lower()
        )
        assert page.is_enabled("#live-start")  # and the person can try again
        browser.close()
