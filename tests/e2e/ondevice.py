"""What the on-device parity test and benchmarks/bench_ondevice.py share: a small static server
over the repository (Python's http.server in a thread, 127.0.0.1, a free port; .wasm served as
application/wasm, .mjs/.js as text/javascript) with extra in-memory routes (frames, an altered
model), the pipeline's configuration from the model cards, and the harness page in Chromium."""

from __future__ import annotations

import functools
import json
import re
import threading
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
HARNESS = "/tests/e2e/ondevice_harness.html"


class _Handler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {**SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript"}
    routes: ClassVar[dict[str, bytes]] = {}

    def do_GET(self):
        body = self.routes.get(self.path)
        if body is None:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def static_server(routes: dict[str, bytes] | None = None):
    """Yields the base URL of a server over the repository root plus ``routes``."""
    handler = type("Handler", (_Handler,), {"routes": dict(routes or {})})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(ROOT)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def detector_sha256() -> str:
    """The YuNet file's sha256 as models/LICENSE-yunet.md records it."""
    return re.search(r"sha256: ([0-9a-f]{64})", (MODELS / "LICENSE-yunet.md").read_text()).group(1)


def pipeline_config(live_name: str, member_url=None) -> dict:
    """``FacePipeline.load``'s argument from the live model's card and its members' cards."""
    card = json.loads((MODELS / f"{live_name}.json").read_text())
    names = [m["name"] for m in card["members"]] if card.get("kind") == "ensemble" else [live_name]
    members = []
    for name in names:
        member = json.loads((MODELS / f"{name}.json").read_text())
        engine = member["engine"]
        url = member_url(engine["file"]) if member_url else f"/models/{engine['file']}"
        members.append({"url": url, "sha256": engine["sha256"], "temperature": member.get("temperature", 1.0)})
    if card.get("kind") != "ensemble":  # a single network: its own temperature, no views
        card = {**card, "tta": [], "temperature": 1.0}
    return {
        "detector": {"url": "/models/face_detection_yunet.onnx", "sha256": detector_sha256()},
        "card": {"classes": card["classes"], "tta": card.get("tta", []), "temperature": card.get("temperature", 1.0)},
        "members": members,
    }


def open_harness(browser, base: str, timeout_ms: int = 60_000):
    page = browser.new_page()
    page.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + HARNESS)
    page.wait_for_selector("html[data-ready='1']", state="attached")
    return page, errors
