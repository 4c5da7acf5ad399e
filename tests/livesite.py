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
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def site_with_user(data_dir: Path, username: str, password: str, **env: str) -> Iterator[str]:
    """A migrated site in ``data_dir`` with one user, started; yields its URL, stops it after
    (printing the server's log tail, which pytest shows when the test failed)."""
    server = Site(data_dir, **env)
    server.manage("migrate", "--noinput")
    server.create_user(username, password)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        print(server.log_tail())


# Content-Security-Policy violations seen by any page of a browser from launch_chromium: what
# Chromium logged to the console ("Refused to ... because it violates the following Content
# Security Policy directive") and every `securitypolicyviolation` event. tests/e2e/conftest.py
# fails every browser test that leaves one here.
CSP_VIOLATIONS: list[str] = []

# Playwright's own wait_for_function evaluates its predicate with eval (let through by DevTools),
# which Chromium still reports as a script-src violation with no source file; the site's scripts
# always have one. Those reports are left out.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  if (e.blockedURI === "eval" && !e.sourceFile) return;
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
        source = (message.location or {}).get("url") or ""
        if "a string as JavaScript" in text and "/static/" not in source and "?script" not in source:
            return  # Playwright's own eval (see _CSP_LISTENER), not one of the site's scripts
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


def _wait_for_function(self, expression, *, arg=None, timeout=None, polling=None):
    """Page.wait_for_function that works under the site's CSP: Playwright's own one evaluates
    its predicate with eval inside the page, which script-src without 'unsafe-eval' refuses
    (EvalError) once the predicate is not true at the first try (microsoft/playwright#7395).
    This one polls with page.evaluate, which runs through DevTools like any test code."""
    try:
        limit = self._impl_obj._timeout_settings.timeout(timeout)
    except AttributeError:
        limit = timeout if timeout is not None else 30_000
    interval = polling if isinstance(polling, (int, float)) else 100
    deadline = time.monotonic() + limit / 1000 if limit else None
    while True:
        if self.evaluate(expression, arg):
            return self.evaluate_handle(expression, arg)
        if deadline is not None and time.monotonic() > deadline:
            from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

            raise PlaywrightTimeoutError(f"wait_for_function: {limit} ms exceeded waiting for {expression!r}")
        self.wait_for_timeout(interval)


def launch_chromium(playwright, *extra: str):
    """Debian's Chromium through playwright (playwright never downloads a browser here); its
    pages record Content-Security-Policy violations in CSP_VIOLATIONS and wait for functions
    without eval (_wait_for_function)."""
    from playwright.sync_api import Page

    Page.wait_for_function = _wait_for_function
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, *extra])
    return _WatchedBrowser(browser)


def shrink_png(path: Path) -> None:
    """A 256-colour palette PNG without dithering: a third of the size, no visible loss for a
    page shot (photos included), so screenshots kept in docs/ stay small."""
    from PIL import Image

    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)
