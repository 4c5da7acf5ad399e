"""Shared by the browser tests.

- Every browser test fails on a Content-Security-Policy violation in any page it opened
  (tests/livesite.py records them from the console and `securitypolicyviolation` events).
- ``seeded_site``: one site for the whole run with a user who has a result of every kind (a
  photo, a recording and a video uploaded through the page, and a saved live session), for the
  tests that visit every page (CSP, keyboard, phone width).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .. import livesite
from ..conftest import MEDIA, SPEECH


@pytest.fixture(autouse=True)
def _no_csp_violations():
    livesite.CSP_VIOLATIONS.clear()
    yield
    found = list(livesite.CSP_VIOLATIONS)
    livesite.CSP_VIOLATIONS.clear()
    assert not found, "Content-Security-Policy violations:\n" + "\n".join(found)


@dataclass
class SeededSite:
    site: livesite.Site
    username: str
    password: str
    results: dict[str, str] = field(default_factory=dict)  # kind -> result page path

    @property
    def url(self) -> str:
        return self.site.url

    def sign_in(self, page, next_path: str = "/upload/") -> None:
        page.goto(f"{self.url}/accounts/login/?next={next_path}")
        page.fill("#id_username", self.username)
        page.fill("#id_password", self.password)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{self.url}{next_path}")


# The user and a saved live session of three seconds with one face (recognition.live's own
# recorder), in one manage.py process (each costs seconds of start-up on a busy machine).
LIVE_SESSION = """
import os
from django.contrib.auth.models import User
from recognition.live.persistence import save_live_session
from recognition.live.recorder import SessionRecorder
User.objects.create_user(os.environ["SITE_USERNAME"], password=os.environ["SITE_PASSWORD"])
rec = SessionRecorder()
probs = {"happy": 0.7, "neutral": 0.2, "sad": 0.1}
for second in range(3):
    rec.started -= 1.0
    rec.add_frame({"faces": [{"box": [10, 10, 80, 80], "emotion": "happy", "confidence": 0.7,
                              "probabilities": probs}], "server_ms": 20.0})
print(save_live_session(owner=User.objects.get(username=os.environ["SITE_USERNAME"]), summary=rec.summary()).pk)
"""


def wait_until_ready(url: str, timeout: float = 900) -> None:
    """Until /readyz says ready: the models are loaded (warmed up at start), so the first page
    and upload do not wait behind the warm-up on a busy machine."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=60) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(2)
    raise TimeoutError(f"{url} was not ready within {timeout} s")


@pytest.fixture(scope="session")
def seeded_site(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    from tests.video_media import make_video

    if not shutil.which("ffmpeg") or not Path(livesite.CHROMIUM).exists():
        pytest.fail("ffmpeg and /usr/bin/chromium are needed (scripts/test installs them)")
    folder = tmp_path_factory.mktemp("seeded-site")
    seeded = SeededSite(livesite.Site(folder), "seeded", "Seeded-test-password-9")
    site = seeded.site
    site.manage("migrate", "--noinput")
    live_pk = site.manage(
        "shell", "-c", LIVE_SESSION, SITE_USERNAME=seeded.username, SITE_PASSWORD=seeded.password
    ).split()[-1]
    seeded.results["live"] = f"/analyses/{live_pk}/"
    clip = folder / "talking.mp4"
    clip.write_bytes(make_video(seconds=2.0))
    files = {"image": MEDIA / "test_image.jpg", "audio": SPEECH / "03-01-03-02-01-01-18.flac", "video": clip}
    site.start(timeout=600)  # a busy machine: importing the site can take minutes
    try:
        wait_until_ready(site.url)
        livesite.CSP_VIOLATIONS.clear()
        with sync_playwright() as p:
            browser = livesite.launch_chromium(p)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(120_000)
            seeded.sign_in(page)
            page.set_input_files("#id_files", [str(f) for f in files.values()])
            page.wait_for_function(
                "document.querySelectorAll('.upload-item[data-status=done]').length === 3", timeout=300_000
            )
            for kind, path in files.items():
                item = page.locator(".upload-item", has_text=path.name)
                seeded.results[kind] = item.locator("a", has_text="See the result").get_attribute("href")
            browser.close()
        assert not livesite.CSP_VIOLATIONS, livesite.CSP_VIOLATIONS
        yield seeded
    finally:
        site.stop()
