"""Every main page renders in every language: 200, the right ``<html lang>``, translated words — and a language
switcher on each page."""
from __future__ import annotations

import re

import pytest

from portal.services.i18n import SUPPORTED

from .crawl import visible_text

LANGS = ("en", "fr", "de", "lb")
LANG_RE = re.compile(r'<html lang="([^"]+)"')


def main_pages(demo, db):
    from sqlalchemy import select

    from portal.models import LoyaltyCard

    programs = {p["type"]: p for p in demo["programs"]}
    stamp = programs["stamps"]
    card = db.session.scalars(select(LoyaltyCard).where(LoyaltyCard.program_id == stamp["id"])
                              .order_by(LoyaltyCard.id)).first()
    return [
        # (role, url, a message that must show translated)
        ("anonymous", "/login", "Log in"),
        ("owner", "/dashboard", "Dashboard"),
        ("owner", "/programs", "Programs"),
        ("owner", "/programs/new", "Stamps for a reward"),
        ("owner", f"/programs/{stamp['id']}/edit", "Protection against abuse"),
        ("owner", "/staff", "Staff"),
        ("owner", "/customers", "Customers"),
        ("owner", f"/customers/{card.card_number}", "Correct the balance"),
        ("owner", "/customers/import", "Import customers"),
        ("owner", "/account/password", "Current password"),
        ("staff", "/tablet", "Scan the customer's QR code or type the card number."),
        ("staff", f"/tablet?card={card.card_number}", "Add stamp"),
        ("admin", "/admin/", "Vendors"),
        ("admin", "/admin/programs", "All programs"),
        ("admin", "/admin/stats", "Platform statistics"),
        ("admin", "/admin/ledger", "Verify the ledger"),
        ("anonymous", f"/p/{stamp['slug']}", "Get my card"),
        ("anonymous", f"/c/{card.public_token}", "Card number"),
        ("anonymous", "/no-such-page", "Not found."),
    ]


def texts(html: str) -> set[str]:
    return {node.strip() for node in visible_text(html).nodes if node.strip()}


@pytest.mark.parametrize("lang", LANGS)
def test_main_pages_render_in_each_language(app, demo, clients, translations, lang):
    from portal.extensions import db

    roles = clients(lang=lang)
    english = clients(lang="en")
    problems = []
    for role, url, msgid in main_pages(demo, db):
        response = roles[role].get(url)
        html = response.get_data(as_text=True)
        wanted_status = 404 if url == "/no-such-page" else 200
        if response.status_code != wanted_status:
            problems.append(f"{url}: status {response.status_code}")
            continue
        match = LANG_RE.search(html)
        if not match or match.group(1) != lang:
            problems.append(f"{url}: <html lang={match.group(1) if match else None!r}>, wanted {lang!r}")
        expected = translations[lang][msgid]
        if expected not in html.replace("&#39;", "'").replace("&amp;", "&"):
            problems.append(f"{url}: {expected!r} ({msgid!r}) is not on the page")
        if lang != "en":
            # most whole-text messages of the English page come back translated
            page = texts(html)
            english_texts = texts(english[role].get(url).get_data(as_text=True))
            known = [m for m in english_texts if m in translations[lang] and translations[lang][m] != m]
            missing = [m for m in known if translations[lang][m] not in page]
            if known and len(missing) > len(known) * 0.2:
                problems.append(f"{url}: {len(missing)}/{len(known)} texts not translated, e.g. {missing[:5]}")
    assert not problems, f"{lang}:\n" + "\n".join(problems)


#: Pages that have no footer on purpose, with the reason. Everything else shows the language switcher.
NO_SWITCHER = {
    "/programs/{id}/poster": "a printable poster, always in the shop's language",
}


def test_every_page_has_a_language_switcher(app, demo, clients):
    from portal.extensions import db

    roles = clients(lang="en")
    stamp_id = next(p["id"] for p in demo["programs"] if p["type"] == "stamps")
    missing = []
    pages = [(role, url) for role, url, _ in main_pages(demo, db)]
    pages.append(("owner", f"/programs/{stamp_id}/poster"))
    for role, url in pages:
        response = roles[role].get(url)
        html = response.get_data(as_text=True)
        links = set(re.findall(r'href="[^"]*[?&]lang=([a-z]{2})"', html))
        if set(SUPPORTED) <= links:
            continue
        if url.replace(str(stamp_id), "{id}") in NO_SWITCHER:
            continue
        missing.append(f"{url} ({role}): switcher links for {sorted(links)}")
    assert not missing, "pages without a language switcher:\n" + "\n".join(missing)
