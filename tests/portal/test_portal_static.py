"""The strict CSP holds: no inline scripts, event-handler attributes or style attributes in the templates, every
script vendored under portal/static with its licence and loaded with defer."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = [p for p in (ROOT / "portal" / "templates").rglob("*.html") if "public" not in p.parts]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT / "portal" / "templates")))
def test_no_inline_script_handler_or_style(path):
    text = path.read_text()
    assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", text), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", text), "on…= handler attribute"
    assert not re.search(r"\sstyle\s*=", text), "style= attribute"
    assert "<style" not in text
    for tag in re.findall(r"<script[^>]*>", text):
        assert " defer" in tag, tag
    assert "//cdn" not in text and "https://" not in text.replace("https://evil", "")


def test_vendored_scripts_have_their_licence():
    vendor = ROOT / "portal" / "static" / "vendor"
    for package in ("htmx", "jsqr"):
        assert (vendor / package / "LICENSE").stat().st_size > 100
    assert (ROOT / "tests" / "assets" / "axe-core" / "LICENSE").exists()


def test_pages_send_the_strict_csp(owner):
    response = owner.get("/tablet")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
