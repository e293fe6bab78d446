"""Fixtures for the browser journeys (helpers are in browser_helpers.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

# Also imported by other suites (tests/customer): the vendored axe-core used for accessibility checks.
AXE = Path(__file__).resolve().parent.parent / "assets" / "axe-core" / "axe.min.js"

@pytest.fixture(autouse=True)
def _short_timeouts(page):
    page.set_default_timeout(10_000)


@pytest.fixture
def console_errors(page):
    """Console errors and CSP violations seen by the page (asserted empty by the journeys)."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors
