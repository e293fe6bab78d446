"""Fixtures for the translation tests.

* The catalogs are compiled from the ``.po`` files into a temporary directory once per session and the app reads
  them from there (``BABEL_TRANSLATION_DIRECTORIES``): the tests never depend on stale ``.mo`` files.
* ``demo`` seeds the demo shop through the real CLI (``flask loyalty demo --json``); ``clients`` gives logged-in
  test clients per role (owner, staff, admin) and an anonymous one.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import support

from portal.translate import TRANSLATIONS, languages

ROOT = Path(__file__).resolve().parents[2]


def read_catalog(lang: str):
    from babel.messages.pofile import read_po

    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=lang)


def compile_catalogs(target: Path, replace: dict | None = None) -> Path:
    """Write ``<lang>/LC_MESSAGES/messages.mo`` for every catalog into ``target``; ``replace`` maps a language to a
    Catalog to compile instead of its own (the pseudo-locale run)."""
    from babel.messages.mofile import write_mo

    for lang in languages():
        catalog = (replace or {}).get(lang) or read_catalog(lang)
        out = target / lang / "LC_MESSAGES"
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "messages.mo", "wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
    return target


def clear_translation_cache() -> None:
    """Flask-Babel keeps loaded catalogs in ``babel.domain_instance.cache``, on the module-level ``Babel()`` of
    portal/extensions.py: shared by every app of the process. These tests point apps at other catalogs (the pseudo
    locale), so the cache is emptied around each of them — before, to load ours; after, so no other test sees them."""
    from portal.extensions import babel

    domain = vars(babel).get("domain_instance")  # a cached_property: absent until first used
    if domain is not None:
        domain.cache.clear()


@pytest.fixture(autouse=True)
def _fresh_translation_cache():
    clear_translation_cache()
    yield
    clear_translation_cache()


@pytest.fixture(scope="session")
def compiled_translations(tmp_path_factory):
    return compile_catalogs(tmp_path_factory.mktemp("translations"))


@pytest.fixture
def app_config(request, compiled_translations):
    return {"BABEL_TRANSLATION_DIRECTORIES": str(compiled_translations), **getattr(request, "param", {})}


@pytest.fixture
def translations():
    """``translations[lang][msgid]`` → msgstr (the msgid itself for English, the source language)."""
    table = {}
    for lang in languages():
        strings = {}
        for message in read_catalog(lang):
            if not message.id:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            value = message.string if isinstance(message.string, str) else message.string[0]
            strings[key] = value or key
        table[lang] = strings
    return table


csrf_from = functools.partial(support.csrf_from, required=False)  # None on a page without a form


@pytest.fixture
def demo(app, runner):
    """The demo shop, created by the CLI exactly as `make serve` does."""
    result = runner.invoke(args=["loyalty", "demo", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def login_as(app):
    """``login_as(email, password)`` → a fresh logged-in test client (or an anonymous one without arguments)."""

    def make(email=None, password=None, *, lang=None):
        client = app.test_client()
        if lang:
            client.get(f"/login?lang={lang}")
        if email:
            page = client.get("/login")
            token = csrf_from(page.get_data(as_text=True))
            response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
            assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
        return client

    return make


@pytest.fixture
def clients(demo, login_as):
    """Clients per role for the demo shop: ``clients["owner" | "staff" | "admin" | "anonymous"]``."""

    def make(lang=None):
        return {
            "owner": login_as(demo["owner"]["email"], demo["owner"]["password"], lang=lang),
            "staff": login_as(demo["staff_user"]["email"], demo["staff_user"]["password"], lang=lang),
            "admin": login_as(demo["admin"]["email"], demo["admin"]["password"], lang=lang),
            "anonymous": login_as(lang=lang),
        }

    return make
