"""Helpers of the pseudo-locale crawl: discover the pages from ``app.url_map``, pull the visible text out of HTML,
and find the text that did not go through gettext.

The pseudo catalog wraps every msgstr as ``⟦…⟧`` (built from a *fresh* extraction, so what counts is whether a text
went through gettext at all, not whether it is translated yet). Whatever visible text is left once the wrapped
parts, the user's data (every string stored in the database), numbers, dates and punctuation are removed was
written into a template or a view without gettext.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

OPEN, CLOSE = "⟦", "⟧"
SEPARATOR = "\u2029"
#: Attributes whose text people see or hear (tooltips, screen readers, placeholders, JS messages).
TEXT_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-placeholder", "aria-roledescription",
                   "aria-valuetext", "aria-description"}
BUTTON_INPUTS = {"submit", "button", "reset"}
#: Whole elements that hold no visible text.
SKIPPED_ELEMENTS = {"script", "style", "template"}
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                 "wbr", "param"}


def pseudo_catalog(template_path, locale="en"):
    """The template's messages with every msgstr = ⟦msgid⟧ (plural forms: ⟦singular⟧, ⟦plural⟧)."""
    from babel.messages.pofile import read_po

    with open(template_path, "rb") as handle:
        catalog = read_po(handle, locale=locale)
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, (list, tuple)):
            singular, plural = message.id[0], message.id[1]
            message.string = tuple(OPEN + (singular if i == 0 else plural) + CLOSE
                                   for i in range(catalog.num_plurals))
        else:
            message.string = OPEN + message.id + CLOSE
        message.flags.discard("fuzzy")
    catalog.fuzzy = False
    return catalog


class VisibleText(HTMLParser):
    """Text nodes (joined with SEPARATOR so a wrapped text may span inline tags) and text attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.nodes: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.skip_depth = 0
        self.html_lang = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.html_lang = attrs.get("lang")
        if tag in SKIPPED_ELEMENTS and tag not in VOID_ELEMENTS:
            self.skip_depth += 1
            return
        for name, value in attrs.items():
            if not value:
                continue
            if name in TEXT_ATTRIBUTES:
                self.attributes.append((tag, name, value))
            elif name.startswith("data-") and re.search(r"[^\W\d_]{2,}\s+[^\W\d_]{2,}", value) \
                    and "/" not in value and "{" not in value:
                self.attributes.append((tag, name, value))  # a message kept for a script, e.g. data-no-camera
        if tag == "input" and (attrs.get("type") or "").lower() in BUTTON_INPUTS and attrs.get("value"):
            self.attributes.append((tag, "value", attrs["value"]))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in SKIPPED_ELEMENTS:
            self.skip_depth = max(0, self.skip_depth - 1)

    def handle_endtag(self, tag):
        if tag in SKIPPED_ELEMENTS:
            self.skip_depth = max(0, self.skip_depth - 1)

    def handle_data(self, data):
        if self.skip_depth == 0 and data.strip():
            self.nodes.append(data)


def visible_text(html: str) -> VisibleText:
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    return parser


def remove_wrapped(text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        text = re.sub(OPEN + "[^" + OPEN + CLOSE + "]*" + CLOSE, " ", text)
    # a wrapped text cut by |truncate ("⟦10 stamps: A free coffee of…")
    text = re.sub(OPEN + "[^" + OPEN + CLOSE + SEPARATOR + "]*…", " ", text)
    return text


@dataclass
class Scrubber:
    """Removes what is not ours to translate: user data, dates, numbers, symbols."""

    user_data: set[str]
    words: set[str] = field(default_factory=set)  # month/day names, AM/PM of the locale in use

    def __post_init__(self):
        values = sorted({v.strip() for v in self.user_data if v and len(v.strip()) >= 2}, key=len, reverse=True)
        self._patterns = [re.compile(r"(?<!\w)" + re.escape(v) + r"(?!\w)") for v in values]
        self._words = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in sorted(self.words, key=len,
                                                                                            reverse=True)) + r")\.?(?!\w)"
                                 ) if self.words else None

    def residue(self, text: str) -> str:
        text = re.sub(r"\b[a-z][a-z0-9+.-]*://\S+|[^\s@]+@[^\s@]+\.\w+", " ", text)  # links and emails are data
        for pattern in self._patterns:
            text = pattern.sub(" ", text)
        if self._words is not None:
            text = self._words.sub(" ", text)
        text = re.sub(r"\d+", " ", text)
        # what is left that reads as words (two letters or more: a lone "C" on the PIN pad is a symbol)
        return " ".join(re.findall(r"[^\W\d_][^\W\d_’'-]+", text))


def locale_words(locale: str) -> set[str]:
    from babel import Locale

    loc = Locale.parse(locale)
    words = set()
    for table in (loc.months, loc.days):
        for context in table.values():
            for width in context.values():
                words.update(width.values())
    for context in loc.day_periods.values():
        for width in context.values():
            words.update(v for v in width.values() if isinstance(v, str))
    return {w.rstrip(".") for w in words if w}


def database_strings(db) -> set[str]:
    """Every string stored in the database: names, emails, reward texts, notes, slugs, timezones, locales…"""
    from sqlalchemy import String, Text, select

    found = set()
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, (String, Text))]
        if not columns:
            continue
        for row in db.session.execute(select(*columns)):
            found.update(v for v in row if isinstance(v, str))
    return found


def unwrapped_texts(html: str, scrubber: Scrubber) -> list[str]:
    """The visible texts of a page that did not go through gettext (empty when all is well)."""
    parsed = visible_text(html)
    joined = SEPARATOR.join(parsed.nodes)
    problems = []
    for node in remove_wrapped(joined).split(SEPARATOR):
        residue = scrubber.residue(node)
        if residue:
            problems.append(f"text {node.strip()[:120]!r} → {residue!r}")
    for tag, name, value in parsed.attributes:
        residue = scrubber.residue(remove_wrapped(value))
        if residue:
            problems.append(f"<{tag} {name}={value[:120]!r}> → {residue!r}")
    return problems


def fill_arguments(rule, values: dict) -> list[dict] | None:
    """Every combination we test for a rule's parameters (None when a parameter is unknown)."""
    combos = [{}]
    for name in sorted(rule.arguments):
        options = values.get(name)
        if not options:
            return None
        combos = [{**c, name: option} for c in combos for option in options]
    return combos
