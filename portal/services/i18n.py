"""Locale handling shared by pages, API messages, passes and posters."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import current_app, has_request_context, request, session

SUPPORTED = ("en", "fr", "de", "lb")
ALIASES = {"lu": "lb", "ltz": "lb", "lb-lu": "lb", "fr-lu": "fr", "de-lu": "de"}
# What Babel/CLDR calls each of our locales.
BABEL_NAMES = {"en": "en", "fr": "fr", "de": "de", "lb": "lb"}
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "de": "Deutsch", "lb": "Lëtzebuergesch"}


def normalise_locale(value: str | None) -> str | None:
    """'lu' → 'lb', 'fr-LU' → 'fr', unknown → None."""
    if not value:
        return None
    value = value.strip().lower().replace("_", "-")
    if value in ALIASES:
        return ALIASES[value]
    base = value.split("-")[0]
    base = ALIASES.get(base, base)
    return base if base in SUPPORTED else None


def current_locale() -> str:
    """The locale of the current request as chosen by Flask-Babel's selector, else English."""
    try:
        from flask_babel import get_locale

        loc = get_locale()
        if loc is not None:
            return str(loc)
    except (RuntimeError, AttributeError, KeyError):
        pass
    return "en"


def select_locale() -> str:
    """Flask-Babel's locale selector, first answer wins:

    1. ``?lang=`` (kept in the session), 2. the choice kept in the session, 3. the signed-in user's preference,
    4. the page's default (``g.default_locale``: the shop's language on staff pages, the card's on a card's page),
    5. ``Accept-Language`` by its q-values, 6. ``g.fallback_locale`` (the shop's language on customers' pages
    without a card and for API clients), 7. English (``BABEL_DEFAULT_LOCALE``). Posters set ``g.force_locale``."""
    if not has_request_context():
        return "en"
    from flask import g

    forced = getattr(g, "force_locale", None)
    if forced:
        return forced
    lang = normalise_locale(request.args.get("lang"))
    if lang:
        session["lang"] = lang
        return lang
    if session.get("lang") in SUPPORTED:
        return session["lang"]
    user_pref = getattr(g, "user_locale", None)
    if user_pref in SUPPORTED:
        return user_pref
    page_default = getattr(g, "default_locale", None)
    if page_default in SUPPORTED:
        return page_default
    fallback = getattr(g, "fallback_locale", None)
    fallback = fallback if fallback in SUPPORTED else None
    # Our locales and their aliases; the fallback first, so that "*" (any language) means the shop's.
    offered = ([fallback] if fallback else []) + [code for code in (*SUPPORTED, *ALIASES) if code != fallback]
    lang = normalise_locale(request.accept_languages.best_match(offered))
    if lang:
        return lang
    if fallback:
        return fallback
    return current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


# --- compiled catalogues -----------------------------------------------------------------------------------------

def catalogue_paths(app, lang: str) -> list[tuple[Path, Path]]:
    """(messages.po, messages.mo) of ``lang`` in each translation directory Flask-Babel reads, in its order."""
    from flask_babel import get_babel

    config = get_babel(app)
    return [(Path(directory) / lang / "LC_MESSAGES" / f"{domain}.po",
             Path(directory) / lang / "LC_MESSAGES" / f"{domain}.mo")
            for directory in config.translation_directories for domain in config.default_domain.split(";")]


def compile_catalogue(po: Path, mo: Path, lang: str) -> None:
    """``po`` → ``mo`` (fuzzy entries left out, as ``pybabel compile`` does), replaced atomically so that a process
    starting at the same time never reads half a file."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(po, "rb") as handle:
        catalogue = read_po(handle, locale=lang)
    fd, partial = tempfile.mkstemp(dir=mo.parent, prefix=".messages-", suffix=".mo")
    try:
        with os.fdopen(fd, "wb") as handle:
            write_mo(handle, catalogue, use_fuzzy=False)
        os.replace(partial, mo)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def ensure_catalogues(app) -> None:
    """Every language needs its compiled catalogue (``.mo``): without it Flask-Babel silently answers in English
    under ``<html lang="fr">``. Wheels carry them (setup.py compiles them at build time). In development a checkout's
    ``.mo`` that is missing or older than its ``.po`` is compiled here; in production (``APP_ENV=production``) a
    missing catalogue stops the start."""
    production = app.config.get("APP_ENV") == "production"
    missing = []
    for lang in app.config.get("LANGUAGES") or SUPPORTED:
        paths = catalogue_paths(app, lang)
        if not production:
            for po, mo in paths:
                if po.is_file() and (not mo.is_file() or mo.stat().st_mtime < po.stat().st_mtime):
                    try:
                        compile_catalogue(po, mo, lang)
                    except OSError as error:
                        app.logger.error("Could not compile %s: %s", po, error)
        if not any(mo.is_file() for _, mo in paths):
            missing.append(lang)
    if missing:
        where = ", ".join(str(directory) for directory in _translation_directories(app))
        message = (f"No compiled translation catalogue (messages.mo) for {', '.join(missing)} in {where}: pages would "
                   "be English whatever their language. Install from a wheel (pip install . compiles them) or run "
                   "`flask --app wsgi translate compile`.")
        if production:
            raise RuntimeError(message)
        app.logger.error(message)


def _translation_directories(app) -> list[str]:
    from flask_babel import get_babel

    return list(get_babel(app).translation_directories)
