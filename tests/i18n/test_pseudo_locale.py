"""Pseudo-locale run: every page, rendered with a catalog that wraps every msgstr as ⟦…⟧, shows no visible text
outside the brackets except the user's data (shop, program, reward, customer and staff names, emails, card numbers
— anything stored in the database), numbers, dates, times and the language names of the switcher.

The pseudo catalog stands in for English (the source language, and the one every fallback reaches: forced shop
locales, API clients, customers' cards), so no page can slip back to plain English. The pages are found in
``app.url_map`` (GET routes; parameters filled from the demo shop), plus the states that only a form post shows
(refusals, field errors, flash messages) and the error pages.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.services.i18n import LANGUAGE_NAMES
from portal.translate import extract_to

from .conftest import compile_catalogs, csrf_from
from .crawl import Scrubber, database_strings, fill_arguments, locale_words, pseudo_catalog, unwrapped_texts

#: Not pages: files, feeds, the API. (Their people-facing text, if any, is tested elsewhere.)
SKIP_SUFFIXES = (".csv", ".png", ".svg", ".json", ".css", ".pkpass", ".js", ".txt")
#: The pages the crawl must reach (the issue's list); a missing one fails the test.
MAIN_PAGES = {
    "vendor.login", "vendor.dashboard", "vendor.programs", "vendor.program_new", "vendor.program_edit",
    "vendor.staff", "vendor.customers", "vendor.card_detail", "vendor.tablet", "vendor.program_poster",
    "admin.index", "admin.programs", "admin.ledger_check", "public.enroll", "public.card",
}
ANONYMOUS_ENDPOINTS = {"vendor.login", "vendor.logout_confirm"}


@pytest.fixture(scope="module")
def pseudo_translations(tmp_path_factory):
    base = tmp_path_factory.mktemp("pseudo")
    fresh = extract_to(base / "fresh.pot", quiet=True)
    return compile_catalogs(base / "translations", replace={"en": pseudo_catalog(fresh, "en")})


@pytest.fixture
def app_config(pseudo_translations):
    return {"BABEL_TRANSLATION_DIRECTORIES": str(pseudo_translations)}


def _values(db, demo) -> dict[str, list]:
    from portal.models import LoyaltyCard, LoyaltyProgram, LoyaltyTransaction, StaffPin, User, Vendor

    programs = {p["type"]: p for p in demo["programs"]}
    stamp_id, points_id = programs["stamps"]["id"], programs["points"]["id"]
    cards = {}
    for program_id in (stamp_id, points_id):
        card = db.session.scalars(select(LoyaltyCard).where(LoyaltyCard.program_id == program_id)
                                  .order_by(LoyaltyCard.id)).first()
        cards[program_id] = card
    tx = db.session.scalars(select(LoyaltyTransaction).order_by(LoyaltyTransaction.id.desc())).first()
    pin = db.session.scalars(select(StaffPin).order_by(StaffPin.id)).first()
    staff = db.session.scalars(select(User).where(User.role == "staff")).first()
    vendor = db.session.get(Vendor, demo["vendor"]["id"])
    assert db.session.get(LoyaltyProgram, stamp_id) is not None
    numbers = [cards[stamp_id].card_number, cards[points_id].card_number]
    from portal.services import messages
    from portal.services.accounts import actor_for_user

    owner = db.session.scalars(select(User).where(User.vendor_id == demo["vendor"]["id"], User.role == "owner")).first()
    message = messages.create(actor_for_user(owner), {"program_id": stamp_id, "segment": "all",
                                                      "texts": {"en": "A message"}}, send=True)
    db.session.commit()
    return {
        "message_id": [message.id],
        "program_id": [stamp_id, points_id],
        "card_number": numbers,
        "number": numbers,
        "slug": [programs["stamps"]["slug"], programs["points"]["slug"]],
        "token": [cards[stamp_id].public_token, cards[points_id].public_token],
        "transaction_id": [tx.id],
        "pin_id": [pin.id],
        "user_id": [staff.id],
        "vendor_id": [vendor.id],
    }


def _role(endpoint: str) -> list[str]:
    if endpoint in ANONYMOUS_ENDPOINTS or endpoint.startswith("public."):
        return ["anonymous"]
    if endpoint.startswith("admin."):
        return ["admin"]
    if endpoint.startswith("vendor.tablet"):
        return ["owner", "staff"]
    return ["owner"]


def _crawl_targets(app, values):
    targets, unknown = [], []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint == "static" or rule.rule.startswith("/api/"):
                continue
            if rule.rule.endswith(SKIP_SUFFIXES):
                continue
            combos = fill_arguments(rule, values)
            if combos is None:
                unknown.append(f"{rule.rule} ({rule.endpoint}): parameters {sorted(rule.arguments)}")
                continue
            for arguments in combos:
                for role in _role(rule.endpoint):
                    targets.append((rule.endpoint, role, url_for(rule.endpoint, **arguments)))
    return targets, unknown


def _extra_targets(values, demo):
    """Query-string states of the pages."""
    stamp_card, points_card = values["card_number"]
    return [
        ("vendor.tablet", "staff", f"/tablet?card={stamp_card}"),
        ("vendor.tablet", "staff", f"/tablet?card={points_card}"),
        ("vendor.tablet", "owner", "/tablet/search?q=Marie"),
        ("vendor.tablet", "owner", "/tablet/search?q=nobody-has-this-name"),
        ("vendor.tablet", "owner", "/tablet/card/1234567890"),
        ("vendor.customers", "owner", "/customers?q=nobody-has-this-name"),
        ("vendor.customers", "owner", "/customers?q=Marie"),
        ("vendor.dashboard", "owner", "/dashboard?days=7"),
        ("vendor.program_poster", "owner", f"/programs/{values['program_id'][0]}/poster?size=a5"),
        ("errors", "anonymous", "/no-such-page"),
        ("errors", "staff", "/dashboard"),  # 403
        ("errors", "owner", "/admin/"),  # 403
        ("errors", "anonymous", "/__i18n_boom"),  # 500
        ("errors", "owner", "/customers/0000000000"),
    ]


def _post(client, page_url, url, data, **kw):
    page = client.get(page_url)
    token = csrf_from(page.get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token}, **kw)


def _flows(clients, values, demo):
    """(label, response) of form posts whose answers carry messages: refusals, field errors, flashes."""
    owner, staff, admin, anon = clients["owner"], clients["staff"], clients["admin"], clients["anonymous"]
    stamp_card, points_card = values["card_number"]
    stamp_slug = values["slug"][0]
    pins = {s["program_slug"]: s["pin"] for s in demo["staff"]}
    stamp_pin = pins[stamp_slug]
    out = []
    tablet = f"/tablet?card={stamp_card}"
    out.append(("tablet: wrong PIN", _post(staff, tablet, f"/tablet/card/{stamp_card}",
                                           {"action": "stamp", "staff_pin": "00000000"})))
    out.append(("tablet: stamp", _post(staff, tablet, f"/tablet/card/{stamp_card}",
                                       {"action": "stamp", "staff_pin": stamp_pin})))
    out.append(("tablet: cooldown", _post(staff, tablet, f"/tablet/card/{stamp_card}",
                                          {"action": "stamp", "staff_pin": stamp_pin})))
    out.append(("tablet: redeem too early", _post(staff, tablet, f"/tablet/card/{stamp_card}",
                                                  {"action": "redeem", "staff_pin": stamp_pin})))
    out.append(("tablet: no action", _post(staff, tablet, f"/tablet/card/{stamp_card}", {"action": "dance"})))
    points_tablet = f"/tablet?card={points_card}"
    out.append(("tablet: points", _post(staff, points_tablet, f"/tablet/card/{points_card}",
                                        {"action": "points", "amount": "12.50"})))
    out.append(("tablet: bad amount", _post(staff, points_tablet, f"/tablet/card/{points_card}",
                                            {"action": "points", "amount": "abc"})))
    out.append(("program: empty form", _post(owner, "/programs/new", "/programs/new",
                                             {"type": "stamps", "name": "", "stamps_required": "x"})))
    out.append(("program: points without rewards", _post(owner, "/programs/new", "/programs/new",
                                                         {"type": "points", "name": "P", "points_per_unit": "-1"})))
    out.append(("card: bad adjustment", _post(owner, f"/customers/{stamp_card}", f"/customers/{stamp_card}/adjust",
                                              {"delta": "0", "reason": ""})))
    out.append(("card: adjustment", _post(owner, f"/customers/{stamp_card}", f"/customers/{stamp_card}/adjust",
                                          {"delta": "1", "reason": "Test"}, follow_redirects=True)))
    out.append(("password: mismatch", _post(owner, "/account/password", "/account/password",
                                            {"current_password": "wrong", "new_password": "a-new-password-1",
                                             "confirm": "another-password-2"})))
    out.append(("password: empty", _post(owner, "/account/password", "/account/password", {})))
    out.append(("staff: bad PIN", _post(owner, "/staff", "/staff/pins",
                                        {"program_id": str(values["program_id"][0]), "staff_name": "",
                                         "pin": "12"})))
    out.append(("staff: new PIN", _post(owner, "/staff", "/staff/pins",
                                        {"program_id": str(values["program_id"][0]), "staff_name": "Zoé"},
                                        follow_redirects=True)))
    out.append(("staff: bad user", _post(owner, "/staff", "/staff/users", {"email": "not-an-email"})))
    out.append(("program: pause", _post(owner, "/programs", f"/programs/{values['program_id'][1]}/active",
                                        {"active": "0"}, follow_redirects=True)))
    out.append(("program: paused card on tablet", staff.get(points_tablet)))
    out.append(("program: paused enrolment", anon.get(f"/p/{values['slug'][1]}")))
    out.append(("program: resume", _post(owner, "/programs", f"/programs/{values['program_id'][1]}/active",
                                         {"active": "1"}, follow_redirects=True)))
    out.append(("admin: bad vendor", _post(admin, "/admin/", "/admin/vendors",
                                           {"name": "", "owner_email": "x", "owner_password": "short"})))
    out.append(("admin: ledger check", _post(admin, "/admin/ledger", "/admin/ledger", {})))
    out.append(("enrol: no consent", _post(anon, f"/p/{stamp_slug}", f"/p/{stamp_slug}",
                                           {"name": "Test", "email": "not-an-email", "locale": "en"})))
    out.append(("enrol: too long", _post(anon, f"/p/{stamp_slug}", f"/p/{stamp_slug}",
                                         {"name": "N" * 300, "email": "e" * 300 + "@example.com",
                                          "phone": "1" * 60, "locale": "en", "consent": "y"})))
    out.append(("login: wrong password", _post(anon, "/login", "/login", {"email": "x@example.com",
                                                                          "password": "wrong"})))
    out.append(("login: no CSRF", anon.post("/login", data={"email": "x@example.com", "password": "x"})))
    out.append(("logout", _post(clients["logout"], "/logout", "/logout", {}, follow_redirects=True)))
    return out


def test_every_visible_text_goes_through_gettext(app, demo, clients, monkeypatch):
    from portal.extensions import db

    def boom():
        raise RuntimeError("a planned failure for the 500 page")

    app.add_url_rule("/__i18n_boom", "i18n_boom", boom)
    import portal.web

    monkeypatch.setattr(portal.web.log, "exception", lambda *a, **k: None)  # the planned 500 is not news

    values = _values(db, demo)
    roles = clients(lang="en")
    roles["logout"] = clients(lang="en")["owner"]
    targets, unknown = _crawl_targets(app, values)
    assert not unknown, "routes with parameters the crawl cannot fill (add them to _values):\n" + "\n".join(unknown)
    targets += _extra_targets(values, demo)

    responses = []
    reached = set()
    for endpoint, role, url in targets:
        response = roles[role].get(url)
        responses.append((f"GET {url} as {role}", response))
        if response.status_code == 200:
            reached.add(endpoint)
    responses += [(f"POST {label}", response) for label, response in _flows(roles, values, demo)]

    db.session.rollback()
    scrubber = Scrubber(database_strings(db) | set(LANGUAGE_NAMES.values()) | {"Europe/Luxembourg"},
                        locale_words("en"))
    failures, server_errors, checked = [], [], 0
    for label, response in responses:
        if response.status_code >= 500 and "boom" not in label:
            server_errors.append(f"{label}: {response.status_code}")
        if response.mimetype != "text/html" or response.status_code in (301, 302, 303, 307, 308):
            continue
        checked += 1
        html = response.get_data(as_text=True)
        if "⟦" not in html:
            failures.append(f"{label} ({response.status_code}): no text of the pseudo catalog at all")
            continue
        problems = unwrapped_texts(html, scrubber)
        if problems:
            failures.append(f"{label} ({response.status_code}):\n    " + "\n    ".join(problems))
    assert not server_errors, "pages failed:\n" + "\n".join(server_errors)
    assert checked >= 30, f"only {checked} pages were checked"
    assert not MAIN_PAGES - reached, f"main pages the crawl did not reach with a 200: {sorted(MAIN_PAGES - reached)}"
    assert not failures, (f"{len(failures)} of {checked} pages show text that did not go through gettext "
                          "(wrap it in _() / _l() / ngettext):\n" + "\n".join(failures))
