"""``flask --app wsgi translate extract|update|compile|init LANG`` (as in Miguel Grinberg's tutorial)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
from flask.cli import AppGroup

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "portal" / "translations"
POT = TRANSLATIONS / "messages.pot"

translate_cli = AppGroup("translate", help="Translation catalogs (Babel).")


def _pybabel(*args: str) -> None:
    command = [sys.executable, "-m", "babel.messages.frontend", *args]
    if subprocess.call(command, cwd=ROOT):
        raise click.ClickException("pybabel " + " ".join(args) + " failed")


@translate_cli.command()
def extract():
    """Extract messages into portal/translations/messages.pot."""
    _pybabel("extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext", "--no-location", "--sort-output",
             "-o", str(POT), "portal")


@translate_cli.command()
def update():
    """Extract, then merge new messages into every catalog."""
    extract.callback()
    _pybabel("update", "-i", str(POT), "-d", str(TRANSLATIONS), "--no-fuzzy-matching", "--ignore-obsolete")


@translate_cli.command()
@click.argument("lang")
def init(lang):
    """Start a catalog for a new language."""
    extract.callback()
    _pybabel("init", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", lang)


@translate_cli.command()
def compile():  # noqa: A001 - the command's name
    """Compile every catalog to .mo (done by the install step; .mo files are not committed)."""
    _pybabel("compile", "-d", str(TRANSLATIONS), "--statistics")
