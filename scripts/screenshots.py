"""Screenshots of the home page for the README, taken with headless Chromium (playwright).

Start the site first (./scripts/run), then:
    .venv/bin/python scripts/screenshots.py [--url http://127.0.0.1:8000] [--out docs/screenshots]
Writes home.png (desktop, signed out) and home-phone.png (390 px wide). Uses the system
Chromium (/usr/bin/chromium); playwright never downloads a browser here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.livesite import CHROMIUM_FLAGS, shrink_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    shots = {"home.png": (1280, 860), "home-phone.png": (390, 844)}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, args=list(CHROMIUM_FLAGS)
        )
        for name, (width, height) in shots.items():
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(args.url + "/", wait_until="networkidle")
            page.screenshot(path=args.out / name)
            page.close()
            shrink_png(args.out / name)
            print(args.out / name)
        browser.close()


if __name__ == "__main__":
    main()
