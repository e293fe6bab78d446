"""Helpers for the browser journeys: log in through the UI, run axe-core, take screenshots."""
from __future__ import annotations

from pathlib import Path

AXE = Path(__file__).resolve().parent.parent / "assets" / "axe-core" / "axe.min.js"


def ui_login(page, base_url: str, email: str, password: str) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("domcontentloaded")


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """Run axe-core (injected through the DevTools protocol, so the page's strict CSP stays on)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.slice(0, 3).map(n => n.html)}));
    }""")
    return [v for v in result if v["impact"] in impacts]


def assert_accessible(page, name: str) -> None:
    violations = axe_violations(page)
    assert not violations, f"{name}: {violations}"


def shot(page, screenshot_dir, name: str, full_page: bool = True) -> Path:
    path = screenshot_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
