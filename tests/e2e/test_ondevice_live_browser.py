""""On this device" on the live page, in headless Chromium with a fake camera (a Y4M clip of a
real photo with faces) against the real site under daphne (issue 31):

- the payload audit: every HTTP request (URL, method, content type, body) and every websocket
  frame of an on-device session is recorded; none carries a picture or a sound (content types,
  the magic bytes of JPEG, PNG, GIF, WebP/WAV (RIFF), WebM, Ogg, MP4, FLAC, MP3, base64 and
  data: URLs of them), no socket is opened at all, no body but the timeline save is over 4 KB,
  the save holds only numbers under known keys, and the server's live frame and audio counters
  (/metrics) do not move; the saved session is then in the history page and the API;
- a server-mode control: the same audit over a server session finds the frames (so it can fail);
- a manifest whose sha256 differs from the file: the page refuses the file, says so and does not
  run (no frame analysed, nothing sent).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from ..conftest import MEDIA
from ..livesite import CHROMIUM, SHOTS, Site, launch_chromium, shrink_png
from .axe import describe, violations

pytestmark = pytest.mark.browser

USERNAME, PASSWORD = "devicetester", "Device-test-password-9"
METRICS_TOKEN = "device-audit-metrics-token"
SAVE_PATH = "/api/v1/live-sessions/"
SCREENSHOT = SHOTS / "live-ondevice.png"
SMALL_BODY = 4096  # bytes: any other request body over this is a finding
EMOTIONS = {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}

# Signatures of pictures and sounds, raw and base64-encoded (the first bytes of each format).
MAGIC = {
    "JPEG": b"\xff\xd8\xff",
    "PNG": b"\x89PNG\r\n\x1a\n",
    "GIF": b"GIF8",
    "RIFF (WAV/WebP/AVI)": b"RIFF",
    "WebM/Matroska": b"\x1a\x45\xdf\xa3",
    "Ogg": b"OggS",
    "FLAC": b"fLaC",
    "MP3 (ID3)": b"ID3",
    "MP4/MOV": b"ftyp",
}
BASE64 = {name: base64.b64encode(magic)[: len(magic) * 4 // 3].rstrip(b"=") for name, magic in MAGIC.items()}
MEDIA_TYPES = ("image/", "audio/", "video/", "multipart/", "application/octet-stream")


def media_findings(where: str, body: bytes, content_type: str = "") -> list[str]:
    """What in one request body or socket frame looks like a picture or a sound."""
    found = []
    if content_type.lower().startswith(MEDIA_TYPES):
        found.append(f"{where}: content type {content_type}")
    for name, magic in MAGIC.items():
        if magic in body:
            found.append(f"{where}: {name} bytes")
    for name, encoded in BASE64.items():
        if len(encoded) >= 4 and encoded in body:
            found.append(f"{where}: base64 {name}")
    if re.search(rb"data:(image|audio|video)/", body, re.IGNORECASE):
        found.append(f"{where}: a data: URL of a picture or sound")
    return found


class Recorder:
    """Every request and websocket frame of a browser context."""

    def __init__(self, context) -> None:
        self.requests: list[dict] = []
        self.sockets: list[str] = []
        self.frames: list[dict] = []
        context.on("request", self._request)
        context.on("page", lambda page: page.on("websocket", self._socket))

    def _request(self, request) -> None:
        body = request.post_data_buffer or b""
        self.requests.append({"url": request.url, "method": request.method, "bytes": len(body), "body": body,
                              "content_type": request.headers.get("content-type", "")})  # fmt: skip

    def _socket(self, ws) -> None:
        self.sockets.append(ws.url)
        ws.on("framesent", lambda payload: self._frame("sent", ws.url, payload))
        ws.on("framereceived", lambda payload: self._frame("received", ws.url, payload))

    def _frame(self, direction: str, url: str, payload) -> None:
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        self.frames.append({"direction": direction, "url": url, "binary": not isinstance(payload, str), "body": data})

    def findings(self) -> list[str]:
        """The audit: pictures or sounds in any request or frame sent, and large bodies."""
        found = []
        for r in self.requests:
            where = f"{r['method']} {r['url']}"
            found += media_findings(where, r["body"], r["content_type"])
            if r["bytes"] > SMALL_BODY and not r["url"].endswith(SAVE_PATH):
                found.append(f"{where}: a {r['bytes']}-byte body")
        for f in self.frames:
            if f["direction"] == "sent":
                found += media_findings(f"websocket frame to {f['url']}", f["body"])
                if f["binary"]:
                    found.append(f"websocket frame to {f['url']}: {len(f['body'])} binary bytes")
        return found


def live_counters(site: Site) -> dict[str, float]:
    """The live socket's frame, audio and session counters from /metrics."""
    request = urllib.request.Request(f"{site.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    counters: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("emotionsite_live_frames_total", "emotionsite_live_audio_chunks_total",
                            "emotionsite_live_sessions_started_total")):  # fmt: skip
            name, value = line.rsplit(" ", 1)
            counters[name] = float(value)
    return counters


def numbers_only(body: dict) -> list[str]:
    """Whatever in the save body is not a number under a known key (model name/version and the
    start time are the only strings)."""
    wrong = []
    if set(body) - {"model", "started", "duration", "samples"} or set(body["model"]) != {"name", "version"}:
        wrong.append(f"keys {sorted(body)} / {sorted(body['model'])}")
    if not all(isinstance(body["model"][k], str) and len(body["model"][k]) < 80 for k in ("name", "version")):
        wrong.append("model")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["started"]):
        wrong.append(f"started {body['started']!r}")
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if not number(body["duration"]):
        wrong.append("duration")
    for i, sample in enumerate(body["samples"]):
        if set(sample) != {"t", "faces"} or not number(sample["t"]):
            wrong.append(f"sample {i}: {sorted(sample)}")
        for face in sample["faces"]:
            if set(face) - {"box", "probabilities", "too_small"} or not isinstance(face.get("too_small", False), bool):
                wrong.append(f"sample {i}: face keys {sorted(face)}")
            if not all(number(v) for v in face.get("box", []) + face["probabilities"]) or len(face["probabilities"]) != 7:
                wrong.append(f"sample {i}: a face's numbers")
    return wrong


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not shutil.which("ffmpeg") or not Path(CHROMIUM).exists():
        pytest.fail("ffmpeg and /usr/bin/chromium are needed (scripts/test installs them)")
    server = Site(tmp_path_factory.mktemp("device-site"), METRICS_TOKEN=METRICS_TOKEN)
    server.manage("migrate", "--noinput")
    server.create_user(USERNAME, PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def camera_video(tmp_path_factory) -> Path:
    """A 2-second 640x480 Y4M clip of the test photo (faces); Chromium loops it as the camera."""
    path = tmp_path_factory.mktemp("camera") / "faces.y4m"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-loop", "1", "-i", str(MEDIA / "test_image.jpg"),
                    "-vf", "scale=640:480,format=yuv420p", "-r", "15", "-t", "2", "-y", str(path)], check=True)  # fmt: skip
    return path


@pytest.fixture
def browser(camera_video):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                                  f"--use-file-for-fake-video-capture={camera_video}")  # fmt: skip
        yield browser
        browser.close()


def open_live(browser, site: Site):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    recorder = Recorder(context)
    page = context.new_page()
    page.set_default_timeout(180_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{site.url}/accounts/login/?next=/live/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.wait_for_url(re.compile(r".*/live/$"))
    return page, recorder, errors


def live_data(page) -> dict:
    return page.eval_on_selector("#live", "el => ({...el.dataset})")


FACES_DRAWN = ("() => { const d = document.getElementById('live').dataset;"
               " return d.state === 'live' && Number(d.faces) > 0 && d.labels.length > 0 && Number(d.frames) >= 5; }")  # fmt: skip


def test_on_device_nothing_but_the_timeline_leaves_the_browser(site, browser):
    page, recorder, errors = open_live(browser, site)
    before = live_counters(site)
    # The mode is chosen with the keyboard, as a person using a screen reader would.
    page.focus("input[name=live-mode][value=server]")
    page.keyboard.press("ArrowDown")
    assert page.is_checked("input[name=live-mode][value=device]")
    assert live_data(page)["mode"] == "device"
    assert "No picture or sound leaves this browser" in page.inner_text("#live-mode-now")
    assert page.get_attribute("#live-mode-now", "aria-live") == "polite"
    page.click("#live-start")
    page.wait_for_function(FACES_DRAWN, timeout=240_000)
    data = live_data(page)
    assert set(data["labels"].split(",")) <= EMOTIONS
    assert int(data["frameMs"]) > 0 and page.is_disabled("#live-mic")
    assert page.is_disabled("input[name=live-mode][value=server]")  # locked while live
    drawn = page.evaluate(
        "() => { const c = document.getElementById('live-overlay');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"
    )
    assert drawn > 500
    found = violations(page, site.url)  # the page while live on the device, through axe-core
    assert not found, describe(found)
    page.wait_for_timeout(3000)  # a few seconds of session
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    shrink_png(SCREENSHOT)

    page.click("#live-stop")
    page.wait_for_function("() => document.getElementById('live').dataset.saved !== ''", timeout=60_000)
    saved = live_data(page)
    assert saved["state"] == "stopped" and "Saved to your history" in page.inner_text("#live-message")
    after = live_counters(site)

    # The audit.
    assert recorder.sockets == [] and recorder.frames == [], (recorder.sockets, len(recorder.frames))
    findings = recorder.findings()
    assert not findings, findings
    saves = [r for r in recorder.requests if r["url"].endswith(SAVE_PATH)]
    assert len(saves) == 1 and saves[0]["method"] == "POST" and saves[0]["content_type"] == "application/json"
    body = json.loads(saves[0]["body"])
    assert not numbers_only(body), numbers_only(body)
    assert len(body["samples"]) >= 5 and any(s["faces"] for s in body["samples"])
    posts = [r for r in recorder.requests if r["method"] != "GET" and not r["url"].endswith("/accounts/login/")]
    assert posts == saves, [(r["method"], r["url"]) for r in posts]  # after signing in, the save is the only write
    assert after == before, (before, after)  # the server analysed no frame, no sound
    model_files = [r for r in recorder.requests if "/live/models/" in r["url"]]
    assert len(model_files) == 2  # YuNet and the live network, each fetched once
    print(f"\naudit: {len(recorder.requests)} requests ({sum(r['bytes'] for r in recorder.requests)} body bytes, "
          f"the save {saves[0]['bytes']} bytes, {len(body['samples'])} samples over {body['duration']} s), "
          f"{len(recorder.sockets)} sockets, {len(recorder.frames)} frames; counters {after}")  # fmt: skip

    # Saved like a server session: on the history page and in the API.
    history = page.goto(f"{site.url}/history/")
    assert history.status == 200 and f"/analyses/{saved['saved']}/" in page.content()
    assert page.goto(f"{site.url}/analyses/{saved['saved']}/").status == 200
    api = page.request.get(f"{site.url}/api/v1/analyses/{saved['saved']}/").json()
    assert api["kind"] == "live" and api["status"] == "done"
    assert api["result"]["analysed_on"] == "device" and api["result"]["frames"] == len(body["samples"])
    assert api["models"]["face"] == body["model"]

    # The browser keeps the model files: a second session after a reload analyses faces again
    # without the server serving them again (its access log), only the manifest.
    def served() -> int:
        return len(re.findall(r'"GET /live/models/[0-9a-f]{64}/', site.log_path.read_text()))

    fetched = served()
    assert fetched >= 2  # YuNet and the live network, the first time
    page.goto(f"{site.url}/live/")
    page.check("input[name=live-mode][value=device]")
    page.click("#live-start")
    page.wait_for_function(FACES_DRAWN, timeout=240_000)
    assert served() == fetched
    assert after == live_counters(site)  # still nothing analysed on the server
    assert not errors, errors


def test_the_audit_finds_the_frames_of_a_server_session(site, browser):
    """The control: the same recorder and audit over "On this server" find the camera frames
    (JPEG in binary websocket messages) and the counters move, so the audit above can fail."""
    page, recorder, errors = open_live(browser, site)
    before = live_counters(site)
    assert live_data(page)["mode"] == "server"
    page.click("#live-start")
    page.wait_for_function(FACES_DRAWN, timeout=240_000)
    page.click("#live-stop")
    page.wait_for_function("() => document.getElementById('live').dataset.saved !== ''", timeout=60_000)
    after = live_counters(site)
    findings = recorder.findings()
    assert recorder.sockets and any("JPEG bytes" in f for f in findings), findings[:5]
    assert any("binary bytes" in f for f in findings)
    analysed = 'emotionsite_live_frames_total{outcome="analysed"}'
    assert after.get(analysed, 0) >= before.get(analysed, 0) + 5, (before, after)
    assert not errors, errors


def test_a_model_file_whose_hash_differs_is_refused(site, browser):
    page, recorder, errors = open_live(browser, site)

    def altered_manifest(route):
        manifest = route.fetch().json()
        manifest["detector"]["sha256"] = "0" * 64  # the file stays the real one: the hash differs
        route.fulfill(json=manifest)

    page.route(re.compile(r".*/live/models\.json$"), altered_manifest)
    page.check("input[name=live-mode][value=device]")
    page.click("#live-start")
    page.wait_for_function("() => document.getElementById('live').dataset.state === 'error'", timeout=180_000)
    data = live_data(page)
    assert data["deviceError"] == "integrity" and data["frames"] == "0" and data["faces"] == "0"
    message = page.inner_text("#live-message")
    assert "refused" in message and "SHA-256" in message
    assert page.is_enabled("#live-start") and page.is_disabled("#live-stop")
    assert page.is_enabled("input[name=live-mode][value=server]")  # the person can choose the server
    found = violations(page, site.url)
    assert not found, describe(found)
    page.wait_for_timeout(1000)
    assert live_data(page)["frames"] == "0"  # it does not run
    assert not recorder.sockets
    assert not [r for r in recorder.requests if r["method"] != "GET" and not r["url"].endswith("/accounts/login/")]
    assert page.evaluate("() => document.getElementById('live-video').srcObject") is None  # camera released
    assert not errors, errors
