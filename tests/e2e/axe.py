"""axe-core (vendored in static/vendor/axe.min.js) run inside a page of the live site: the
serious and critical accessibility violations it finds, for browser tests to assert on."""

from __future__ import annotations

BLOCKING = ("serious", "critical")


def violations(page, site_url: str) -> list[dict]:
    """Load axe from the site's own static files (no CDN) into ``page`` and run every rule;
    returns ``[{id, impact, help, targets}]`` for the serious and critical ones."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=f"{site_url}/static/vendor/axe.min.js")
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
            }));
        }"""
    )
    return [v for v in found if v["impact"] in BLOCKING]


def describe(found: list[dict]) -> str:
    return "\n".join(
        f"{v['impact']} {v['id']}: {v['help']} at {v['targets']}" for v in found
    )
