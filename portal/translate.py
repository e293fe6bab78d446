"""``flask --app wsgi translate extract|update|init LANG|compile|check`` — the translation catalogs (Babel).

* ``extract``  scans the package (``babel.cfg``: Python and Jinja templates) into ``portal/translations/messages.pot``.
* ``update``   extracts, then merges the template into every ``portal/translations/<lang>/LC_MESSAGES/messages.po``
               (no fuzzy matching: a new or changed English text is an empty msgstr to translate, never a guess).
* ``init LANG`` starts the catalog of a new language.
* ``compile``  builds the ``.mo`` files (not committed; the build step in ``setup.py`` and, in development, the app's
               start compile them too — ``portal/services/i18n.py``).
* ``check``    prints translated/total per language and exits 1 when a catalog is incomplete, fuzzy or stale.

English is the source language: ``en/…/messages.po`` keeps empty msgstrs (gettext then shows the msgid), so it is
complete by definition; see ``portal/translations/README.md``. Output is for people and stays in English.
"""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

import click
from flask.cli import AppGroup

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "portal"
TRANSLATIONS = PACKAGE / "translations"
POT = TRANSLATIONS / "messages.pot"
MAPPING = ROOT / "babel.cfg"
SOURCE_LOCALE = "en"
#: Besides pybabel's defaults (_, gettext, ngettext, pgettext, npgettext, N_, …).
KEYWORDS = ("_l", "lazy_gettext", "lazy_ngettext:1,2", "lazy_pgettext:1c,2", "_n:1,2")

translate_cli = AppGroup("translate", help="Translation catalogs (Babel).")


def _pybabel(*args: str) -> None:
    from babel.messages.frontend import CommandLineInterface

    try:
        status = CommandLineInterface().run(["pybabel", *args])
    except SystemExit as exit_:  # optparse errors
        status = exit_.code
    if status:
        raise click.ClickException("pybabel " + " ".join(args) + " failed")


def extract_to(output: Path, *, quiet: bool = False) -> Path:
    """Extract every message of the package into ``output`` (a .pot)."""
    args = ["extract", "-F", str(MAPPING), "--no-location", "--sort-output", "--add-comments=TRANSLATORS:",
            "--project=loyalty-portal", "--copyright-holder=loyalty-portal", "-o", str(output)]
    for keyword in KEYWORDS:
        args += ["-k", keyword]
    if quiet:
        args.insert(0, "--quiet")  # a global option: before the command
    _pybabel(*args, str(PACKAGE))
    return output


def languages() -> list[str]:
    """The languages that have a catalog (directories of portal/translations with a messages.po)."""
    return sorted(p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))


def catalog_report(lang: str, template_ids: set | None = None) -> dict:
    """translated / total / fuzzy / missing (msgids of the template the catalog lacks) for one language."""
    from babel.messages.pofile import read_po

    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalog = read_po(handle, locale=lang)
    messages = [m for m in catalog if m.id]
    total = len(messages)

    def translated(message) -> bool:
        strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
        return all(strings)

    done = sum(1 for m in messages if translated(m) and not m.fuzzy)
    fuzzy = [m.id for m in messages if m.fuzzy]
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in messages}
    missing = sorted((template_ids or set()) - ids)
    untranslated = [m.id for m in messages if not translated(m)]
    source = lang == SOURCE_LOCALE
    complete = not fuzzy and not missing and (source or not untranslated)
    return {"lang": lang, "translated": total if source else done, "total": total, "fuzzy": fuzzy,
            "missing": missing, "untranslated": [] if source else untranslated, "complete": complete,
            "source": source}


def template_ids(pot: Path) -> set:
    from babel.messages.pofile import read_po

    with open(pot, "rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


@translate_cli.command()
def extract():
    """Extract messages into portal/translations/messages.pot."""
    extract_to(POT)


@translate_cli.command()
def update():
    """Extract, then merge new messages into every catalog (new messages arrive untranslated, never fuzzy)."""
    extract_to(POT)
    _pybabel("update", "-i", str(POT), "-d", str(TRANSLATIONS), "--no-fuzzy-matching", "--ignore-obsolete")


@translate_cli.command()
@click.argument("lang")
def init(lang):
    """Start a catalog for a new language."""
    extract_to(POT)
    _pybabel("init", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", lang)


@translate_cli.command()
def compile():  # noqa: A001 - the command's name
    """Compile every catalog to .mo (the build step and a development start do it too; .mo files are not committed)."""
    _pybabel("compile", "-d", str(TRANSLATIONS), "--statistics")


@translate_cli.command()
def check():
    """translated/total per language; exit 1 when a catalog is incomplete, fuzzy or stale (a fresh extract has
    messages it lacks)."""
    with tempfile.TemporaryDirectory() as tmp:
        ids = template_ids(extract_to(Path(tmp) / "fresh.pot", quiet=True))
    failed = False
    out = io.StringIO()
    for lang in languages():
        report = catalog_report(lang, ids)
        note = " (source language: msgstr left empty)" if report["source"] else ""
        out.write(f"{lang}: {report['translated']}/{report['total']} translated, {len(report['fuzzy'])} fuzzy, "
                  f"{len(report['missing'])} missing from the catalog{note}\n")
        for msgid in report["missing"][:20]:
            out.write(f"  missing: {msgid!r}\n")
        for msgid in report["untranslated"][:20]:
            out.write(f"  untranslated: {msgid!r}\n")
        failed = failed or not report["complete"]
    click.echo(out.getvalue().rstrip())
    if failed:
        raise click.ClickException("catalogs are not complete: run `flask --app wsgi translate update` and translate")
