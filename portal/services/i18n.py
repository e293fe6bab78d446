"""Locale handling shared by pages, API messages, passes and posters."""
from __future__ import annotations

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

