"""The real site under daphne and a headless Chromium, shared by the browser tests
(tests/e2e/), benchmarks/bench_live.py and scripts/screenshots.py.

``Site`` runs ``emotionsite.asgi`` under daphne on a free localhost port with its own data folder
(SQLite, in-memory channel layer, eager Celery: the embedded default), and can be stopped and
started again on the same port (the live test restarts the server under an open page).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium, headless, with nothing reaching out to the network on its own.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
# Where screenshots go: test-artifacts/ (ignored); SCREENSHOT_DIR=docs/screenshots refreshes the docs.
SHOTS = ROOT / os.environ.get("SCREENSHOT_DIR", "test-artifacts/screenshots")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60, process: subprocess.Popen | None = None) -> None:
    """Until something accepts connections on ``port``; fails early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                break
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


class Site:
    """The site under daphne on SQLite in ``data_dir``; restartable on the same port.

    ``env`` overrides the environment (the defaults: DEBUG on, the embedded default services,
    whatever DATABASE_URL/REDIS_URL the caller has removed)."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.dir / "daphne.log"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        }
        self.env.update({"DATA_DIR": str(self.dir), "DEBUG": "true", "PYTHONUNBUFFERED": "1", **env})
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str, **env: str) -> str:
        """Run a manage.py command against this site's data; returns its standard output."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **env},
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def create_user(self, username: str, password: str) -> None:
        self.manage(
            "shell",
            "-c",
            "import os; from django.contrib.auth.models import User; "
            "User.objects.create_user(os.environ['SITE_USERNAME'], password=os.environ['SITE_PASSWORD'])",
            SITE_USERNAME=username,
            SITE_PASSWORD=password,
        )

    def start(self, timeout: float = 60) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "emotionsite.asgi:application"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.port, timeout, process=self.process)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"daphne did not start:\n{self.log_tail()}") from None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


# Content-Security-Policy violations seen by any page of a browser from launch_chromium: what
# Chromium logged to the console ("Refused to ... because it violates the following Content
# Security Policy directive") and every `securitypolicyviolation` event. tests/e2e/conftest.py
# fails every browser test that leaves one here.
CSP_VIOLATIONS: list[str] = []

_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  const report = `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} on ${e.documentURI}` +
    (e.sourceFile ? ` at ${e.sourceFile}:${e.lineNumber}` : "") + (e.sample ? ` (${e.sample})` : "");
  if (window.__cspViolation) window.__cspViolation(report);
  else console.error("CSP violation: " + report);
}, true);
"""


def watch_csp(context) -> None:
    """Record the CSP violations of every page of a browser context in CSP_VIOLATIONS."""

    def on_console(message) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            CSP_VIOLATIONS.append(f"console: {text}")

    context.on("console", on_console)
    context.expose_function("__cspViolation", lambda report: CSP_VIOLATIONS.append(f"event: {report}"))
    context.add_init_script(_CSP_LISTENER)


class _WatchedBrowser:
    """A playwright Browser whose new contexts and pages report CSP violations (watch_csp)."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        watch_csp(context)
        return context

    def new_page(self, **kwargs):
        page = self._browser.new_page(**kwargs)
        watch_csp(page.context)
        return page

    def __getattr__(self, name):
        return getattr(self._browser, name)


def launch_chromium(playwright, *extra: str):
    """Debian's Chromium through playwright (playwright never downloads a browser here); its
    pages record Content-Security-Policy violations in CSP_VIOLATIONS."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, *extra])
    return _WatchedBrowser(browser)


def shrink_png(path: Path) -> None:
    """A 256-colour palette PNG without dithering: a third of the size, no visible loss for a
    page shot (photos included), so screenshots kept in docs/ stay small."""
    from PIL import Image

    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)
