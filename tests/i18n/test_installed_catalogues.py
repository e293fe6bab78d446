"""Every install speaks French, German and Luxembourgish, not only a checkout set up by scripts/bootstrap.sh:

* a wheel carries the compiled catalogues (setup.py compiles them at build time) — built from a copy of the sources
  without any ``.mo``, installed into its own directory and served by gunicorn outside the checkout;
* a checkout compiles a missing or outdated ``.mo`` when the app starts (development);
* in production a missing catalogue stops the start with a clear error.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from portal import create_app
from portal.translate import TRANSLATIONS, languages

from tests.conftest import ROOT, TEST_CONFIG, free_port
from .test_locale_selection import LANG_RE, html_lang

PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "s" * 40, "PIN_PEPPER": "p" * 40}


def _po_only(target: Path) -> Path:
    """A translation directory holding the catalogues' .po files and no .mo."""
    for lang in languages():
        (target / lang / "LC_MESSAGES").mkdir(parents=True)
        shutil.copy(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", target / lang / "LC_MESSAGES")
    return target


def _config(database_url, translations_dir: Path, **extra) -> dict:
    return {**TEST_CONFIG, "DATABASE_URL": database_url, "BABEL_TRANSLATION_DIRECTORIES": str(translations_dir),
            **extra}


def test_development_start_compiles_missing_catalogues(database_url, tmp_path, translations):
    directory = _po_only(tmp_path / "translations")
    app = create_app(_config(database_url, directory))
    for lang in languages():
        assert (directory / lang / "LC_MESSAGES" / "messages.mo").is_file(), lang
    page = app.test_client().get("/login?lang=fr")
    assert html_lang(page) == "fr"
    assert translations["fr"]["Log in"] in page.get_data(as_text=True)


def test_development_start_recompiles_a_catalogue_older_than_its_po(database_url, tmp_path):
    directory = _po_only(tmp_path / "translations")
    create_app(_config(database_url, directory))
    po = directory / "de" / "LC_MESSAGES" / "messages.po"
    mo = po.with_suffix(".mo")
    mo.write_bytes(b"")  # an outdated build: whatever it holds, it is older than the .po
    os.utime(mo, (time.time() - 60, time.time() - 60))
    create_app(_config(database_url, directory))
    assert mo.stat().st_size > 1000
    assert mo.stat().st_mtime >= po.stat().st_mtime


def test_production_refuses_to_start_without_catalogues(database_url, tmp_path):
    empty = tmp_path / "translations"
    empty.mkdir()
    with pytest.raises(RuntimeError, match=r"messages\.mo.*fr"):
        create_app(_config(database_url, empty, **PRODUCTION))


def test_production_does_not_compile_but_refuses(database_url, tmp_path):
    directory = _po_only(tmp_path / "translations")
    with pytest.raises(RuntimeError, match="messages.mo"):
        create_app(_config(database_url, directory, **PRODUCTION))
    assert not list(directory.glob("*/LC_MESSAGES/*.mo"))


def test_production_starts_with_every_catalogue(database_url, compiled_translations):
    app = create_app(_config(database_url, compiled_translations, **PRODUCTION))
    assert html_lang(app.test_client().get("/login?lang=lb", base_url="https://localhost")) == "lb"


# --- the wheel ---------------------------------------------------------------------------------------------------

def _run(*args, **kwargs) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=240, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout}\n{result.stderr}"


@pytest.mark.slow
def test_a_wheel_serves_every_language(tmp_path, translations):
    # The sources as a fresh clone has them: no compiled catalogue, no build output.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "instance", "tests", "bench", "test-output", ".pytest_cache",
        ".hypothesis", "__pycache__", "*.mo"))
    assert not list(source.rglob("*.mo"))
    # Built as a host or an image would (build isolation: [build-system] requires), installed into its own directory.
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source))
    wheel = next((tmp_path / "dist").glob("loyalty_portal-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for lang in languages():
        assert f"portal/translations/{lang}/LC_MESSAGES/messages.mo" in names, lang
    site = tmp_path / "site"
    _run(sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(site), str(wheel))

    run = tmp_path / "run"
    run.mkdir()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(site), "APP_ENV": "production", "SECRET_KEY": "s" * 40,
           "PIN_PEPPER": "p" * 40, "DATABASE_URL": f"sqlite:///{run / 'portal.sqlite3'}",
           "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    env.pop("BABEL_TRANSLATION_DIRECTORIES", None)
    where = subprocess.run([sys.executable, "-c", "import portal; print(portal.__file__)"], cwd=run, env=env,
                           capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr  # the wheel, not the checkout

    log = open(tmp_path / "gunicorn.log", "w+")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}",
                               "portal:create_app()"], cwd=run, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 45
        while True:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.2)
        for lang, query, header in (("fr", "?lang=fr", None), ("de", "", "de-LU,de;q=0.9"), ("lb", "?lang=lu", None)):
            response = httpx.get(f"http://127.0.0.1:{port}/login{query}", timeout=10,
                                 headers={"Accept-Language": header} if header else {})
            assert response.status_code == 200, response.text[:500]
            assert LANG_RE.search(response.text).group(1) == lang
            assert translations[lang]["Log in"] != "Log in"
            assert translations[lang]["Log in"] in response.text, (lang, response.text[:2000])
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
