"""The catalogs themselves: complete, never fuzzy, not stale, placeholders intact, the terms we agreed on.

English is the source language: its catalog keeps empty msgstrs (gettext shows the msgid), so "complete" for
``en`` means "every msgid is there and nothing is fuzzy"; fr, de and lb must translate every message.
(See portal/translations/README.md.)
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter

import pytest

from portal.translate import POT, SOURCE_LOCALE, TRANSLATIONS, extract_to, languages, template_ids

from .conftest import read_catalog

REQUIRED = ("en", "fr", "de", "lb")
TRANSLATED = ("fr", "de", "lb")
PLACEHOLDER_RE = re.compile(
    r"%\((?P<name>\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrs]"   # %(name)s, %(delta)+d
    r"|%[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrs@]"                   # %s, %d, Apple's %@
    r"|\{(?P<brace>\w*)\}")                                       # {name}, {}
#: Plural forms may leave out the number itself ("one more stamp"), nothing else.
COUNT_NAMES = {"num", "n", "count"}


def messages(lang):
    return [m for m in read_catalog(lang) if m.id]


def forms(message):
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]


def placeholders(text: str) -> Counter:
    return Counter(m.group(0) for m in PLACEHOLDER_RE.finditer(text.replace("%%", "")))


@pytest.fixture(scope="module")
def fresh_template(tmp_path_factory):
    return extract_to(tmp_path_factory.mktemp("pot") / "fresh.pot", quiet=True)


def test_every_language_has_a_catalog():
    assert set(REQUIRED) <= set(languages()), languages()


def test_english_is_the_source_language(app):
    assert app.config["BABEL_DEFAULT_LOCALE"] == SOURCE_LOCALE == "en"
    leftovers = [m.id for m in messages("en") if any(s and s != (m.id if isinstance(m.id, str) else s)
                                                     for s in forms(m))]
    assert not leftovers, f"en msgstr must stay empty (source language): {leftovers[:10]}"


@pytest.mark.parametrize("lang", REQUIRED)
def test_no_fuzzy_entries(lang):
    catalog = read_catalog(lang)
    assert not catalog.fuzzy, f"{lang}: the catalog header is marked fuzzy (pybabel compile would skip it)"
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"{lang}: fuzzy entries: {fuzzy[:20]}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_catalog_is_complete(lang):
    total = messages(lang)
    missing = [m.id for m in total if not all(forms(m))]
    assert not missing, (f"{lang}: {len(total) - len(missing)}/{len(total)} translated; untranslated: "
                         f"{missing[:20]}")


@pytest.mark.parametrize("lang", REQUIRED)
def test_catalog_is_not_stale(lang, fresh_template):
    """A fresh extraction of the code has no message the catalog lacks (run `flask translate update`)."""
    fresh = template_ids(fresh_template)
    have = {m.id if isinstance(m.id, str) else m.id[0] for m in messages(lang)}
    missing = sorted(fresh - have)
    assert not missing, f"{lang}: {len(missing)} messages of the code are not in the catalog: {missing[:20]}"
    obsolete = sorted(have - fresh)
    assert not obsolete, f"{lang}: messages no longer in the code (run `flask translate update`): {obsolete[:20]}"


def test_committed_template_is_fresh(fresh_template):
    assert POT.exists(), "portal/translations/messages.pot is missing: run `flask --app wsgi translate extract`"
    assert template_ids(POT) == template_ids(fresh_template), "messages.pot is stale: run `flask translate update`"


def test_plural_forms_match_the_language():
    from babel import Locale

    for lang in REQUIRED:
        catalog = read_catalog(lang)
        assert catalog.num_plurals == 2, (lang, catalog.plural_forms)
        assert Locale.parse(lang).plural_form is not None
        for message in catalog:
            if message.id and isinstance(message.id, (list, tuple)):
                assert len(forms(message)) == catalog.num_plurals, (lang, message.id)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_placeholders_match(lang):
    problems = []
    for message in messages(lang):
        if isinstance(message.id, (list, tuple)):
            singular, plural = message.id[0], message.id[1]
            wanted = placeholders(plural)
            assert set(placeholders(singular)) <= set(wanted), message.id
            for index, text in enumerate(forms(message)):
                got = placeholders(text)
                extra = set(got) - set(wanted)
                lacking = {p for p in set(wanted) - set(got)
                           if not (PLACEHOLDER_RE.match(p).group("name") in COUNT_NAMES and index == 0)}
                if extra or lacking:
                    problems.append((message.id[0], index, text, sorted(extra), sorted(lacking)))
        else:
            got, wanted = placeholders(message.string), placeholders(message.id)
            if got != wanted:
                problems.append((message.id, message.string, dict(wanted), dict(got)))
        if "python-format" in message.flags:
            # the same check gettext does: the msgstr must format with the msgid's named arguments
            names = {m.group("name") for m in PLACEHOLDER_RE.finditer(message.id if isinstance(message.id, str)
                                                                       else message.id[1]) if m.group("name")}
            for text in forms(message):
                try:
                    text % {name: 1 for name in names}
                except (KeyError, ValueError, TypeError) as error:
                    problems.append((message.id, text, repr(error)))
    assert not problems, f"{lang}: placeholders differ:\n" + "\n".join(map(repr, problems))


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt is not installed (apt-get install "
                                                         "gettext); the pure-Python checks above still run")
@pytest.mark.parametrize("lang", REQUIRED)
def test_msgfmt_check_and_statistics(lang, tmp_path):
    """GNU msgfmt agrees: valid syntax, format strings consistent (--check), 100 % translated, nothing fuzzy."""
    po = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
    done = subprocess.run(["msgfmt", "--check", "--statistics", "-o", str(tmp_path / "m.mo"), str(po)],
                          capture_output=True, text=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    stats = done.stderr.strip().splitlines()[-1]
    assert "fuzzy" not in stats, stats
    if lang == SOURCE_LOCALE:
        assert re.fullmatch(r"0 translated messages, \d+ untranslated messages\.", stats), stats
    else:
        assert re.fullmatch(r"\d+ translated messages\.", stats), f"{lang}: {stats}"


# Terms agreed for the product (the glossary in portal/translations/README.md). Each catalog must use them.
GLOSSARY = {
    "Stamp": {"fr": "Tampon", "de": "Stempel", "lb": "Stempel"},
    "Reward": {"fr": "Récompense", "de": "Prämie", "lb": "Belounung"},
    "Card": {"fr": "Carte", "de": "Karte", "lb": "Kaart"},
    "Staff": {"fr": "Personnel", "de": "Personal", "lb": "Personal"},
    "Points": {"fr": "Points", "de": "Punkte", "lb": "Punkten"},
    "Your PIN": {"fr": "Votre code PIN", "de": "Ihre PIN", "lb": "Är PIN"},
    "Too soon after the last stamp (cooldown)": {"fr": "délai d’attente", "de": "Wartezeit", "lb": "Waardezäit"},
    "Language": {"fr": "Langue", "de": "Sprache", "lb": "Sprooch"},
    "Save": {"fr": "Enregistrer", "de": "Speichern", "lb": "Späicheren"},
}
#: Words that must not appear in a language (wrong term, or English left over).
FORBIDDEN = {
    "fr": [r"\bstamps?\b", r"\bcooldown\b", "FRENCH_PIN"],
    "de": [r"\bPrämien?punkte\b", r"\bBelohnung", r"\bstamps?\b", r"\bcooldown\b", r"\bdu\b", r"\bdein"],
    "lb": [r"\bBelounug", r"\bKarte\b", r"\bPrämie", r"\bdu\b", r"\bdäi", r"\bSprache\b", r"\bSpeichern\b",
           r"\bZurück\b", r"\bLöschen\b", r"\bstamps?\b", r"\bcooldown\b"],
}


@pytest.mark.parametrize("lang", TRANSLATED)
def test_glossary_terms(lang):
    strings = {m.id: m.string for m in messages(lang) if isinstance(m.id, str)}
    wrong = [(en, strings.get(en), terms[lang]) for en, terms in GLOSSARY.items()
             if en in strings and terms[lang] not in strings[en]]
    assert not wrong, wrong
    hits = []
    for message in messages(lang):
        for text in forms(message):
            for pattern in FORBIDDEN[lang]:
                if pattern == "FRENCH_PIN":
                    # French: "PIN" only in "code(s) PIN" (or the compound "clavier PIN")
                    if re.search(r"(?<![Cc]ode )(?<![Cc]odes )(?<![Cc]lavier )\bPIN\b", text):
                        hits.append((pattern, text))
                elif re.search(pattern, text):
                    hits.append((pattern, text))
    assert not hits, f"{lang}: wrong terms: {hits[:20]}"


def test_french_typography():
    """A no-break space before : ; ? ! and inside « », never a plain space; typographic apostrophes."""
    bad = []
    for message in messages("fr"):
        for text in forms(message):
            stripped = re.sub(r"%\(\w+\)[-#0 +]*\d*[a-z]|https?://\S+|\w+://\S+", "", text)
            if re.search(r" [:;?!»]", stripped) or "« " in stripped or "'" in stripped or '"' in stripped:
                bad.append(text)
            if re.search(r"\w[;?!]", stripped):
                bad.append(text)
            if re.search(r"(?<![\s\u00a0\u202f]):(?=\s)", stripped) and "Authorization:" not in stripped \
                    and "Content-Type:" not in stripped:
                bad.append(text)
    assert not bad, "French typography:\n" + "\n".join(bad)


def test_formal_address():
    """vous / Sie / Dir: never tu / du / du."""
    informal = {"fr": r"\b(tu|ton|ta|tes|toi)\b", "de": r"\b(du|dich|dir|dein\w*)\b", "lb": r"\b(du|däin\w*|däi|dech)\b"}
    for lang, pattern in informal.items():
        hits = [t for m in messages(lang) for t in forms(m) if re.search(pattern, t)]
        assert not hits, (lang, hits[:10])
    formal = {"fr": r"\b[Vv]ou?s\b|\b[Vv]otre\b|\b[Vv]os\b", "de": r"\bSie\b|\bIhr", "lb": r"\bDir\b|\bÄr|\bIech\b"}
    for lang, pattern in formal.items():
        assert any(re.search(pattern, t) for m in messages(lang) for t in forms(m)), lang


def test_luxembourgish_n_rule():
    """The Eifeler Regel on the words where a slip is most visible: a final n drops before a consonant other than
    n, d, t, z, h (e.g. "Stempele gesammelt", "kee Programm", "scho vergeben")."""
    keep = set("aeiouäëéèöüyAEIOUÄËÉÈÖÜYndtzhNDTZH")
    words = {"schonn", "kann", "den", "een", "keen", "ginn", "Stempelen", "Punkten", "Kaarten", "Transaktiounen",
             "Belounungen", "Clienten", "Aschreiwungen", "Donnéeën", "Zeilen", "benotzen", "kënnen", "sinn", "hunn",
             "Ären", "en", "an", "vun"}
    bad = []
    for message in messages("lb"):
        for text in forms(message):
            tokens = text.split()
            for first, second in zip(tokens, tokens[1:]):
                if first in words and second[:1].isalpha() and second[0] not in keep:
                    bad.append(f"{first} {second}  ← {text}")
    assert not bad, "\n".join(bad)


def test_babel_knows_luxembourgish():
    """CLDR data for lb: dates, numbers, currency and plural rules exist (Babel ≥ 2.9)."""
    import datetime as dt

    from babel import Locale, dates, numbers
    from babel.localedata import locale_identifiers

    assert "lb" in locale_identifiers()
    lb = Locale.parse("lb")
    assert lb.get_display_name("lb") == "Lëtzebuergesch"
    assert dates.format_date(dt.date(2026, 3, 3), "full", locale="lb") == "Dënschdeg, 3. Mäerz 2026"
    assert numbers.format_currency("1234.5", "EUR", locale="lb") == "1.234,50\xa0€"
    assert dates.format_time(dt.time(14, 35), "short", locale="lb") == "14:35"


def test_translate_check_command(runner):
    """`flask --app wsgi translate check` agrees: every catalog complete, not fuzzy, not stale."""
    result = runner.invoke(args=["translate", "check"])
    assert result.exit_code == 0, result.output
    for lang in REQUIRED:
        assert re.search(rf"^{lang}: (\d+)/\1 translated, 0 fuzzy, 0 missing", result.output, re.M), result.output
