"""Google Wallet resources of loyalty programs and cards.

* One LoyaltyClass per program: id ``<issuer>.<program.slug>``.
* One LoyaltyObject per card: id ``<issuer>.<card.apple_serial>`` (random, so it reveals nothing), stored in
  ``card.google_object_id`` once the worker created it. The balance travels in ``loyaltyPoints.balance.int``.
* Texts are localised with ``translatedValues`` for fr, de and lb (English is the default value).
"""
from __future__ import annotations

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from ...models import LoyaltyCard, LoyaltyProgram
from ..cards import format_card_number
from ..i18n import SUPPORTED

DEFAULT_LANGUAGE = "en"


def issuer_id(app=None) -> str:
    return str((app or current_app).config["GOOGLE_WALLET_ISSUER_ID"]).strip()


def class_id(program: LoyaltyProgram, app=None) -> str:
    return f"{issuer_id(app)}.{program.slug}"


def object_id(card: LoyaltyCard, app=None) -> str:
    return f"{issuer_id(app)}.{card.apple_serial}"


def localized(text_for_locale) -> dict:
    """``{"defaultValue": {...en...}, "translatedValues": [fr, de, lb]}`` from a function of the locale."""
    values = {}
    for locale in SUPPORTED:
        with force_locale(locale):
            values[locale] = str(text_for_locale(locale))
    return {
        "defaultValue": {"language": DEFAULT_LANGUAGE, "value": values[DEFAULT_LANGUAGE]},
        "translatedValues": [{"language": loc, "value": values[loc]} for loc in SUPPORTED if loc != DEFAULT_LANGUAGE],
    }


def _unit_label(program: LoyaltyProgram):
    return lambda _loc: _("Stamps") if program.is_stamps else _("Points")


def logo_url(program: LoyaltyProgram, app=None) -> str:
    app = app or current_app
    # The version makes Google fetch the logo again after a design change (it caches images by address).
    version = int(program.updated_at.timestamp()) if program.updated_at else 0
    return f"{app.config['PUBLIC_BASE_URL']}/p/{program.slug}/logo.png?v={version}"


def callback_url(app=None) -> str:
    """Where Google posts its signed save/delete callbacks (``callbackOptions`` of every class)."""
    return f"{(app or current_app).config['PUBLIC_BASE_URL']}/api/v1/loyalty/google/callback"


def class_body(program: LoyaltyProgram, app=None, locations=None) -> dict:
    """``locations``: the program's ProgramLocation rows, sent as ``merchantLocations`` when there are any."""
    from .. import relevance

    app = app or current_app
    body = {
        "id": class_id(program, app),
        "issuerName": program.vendor.name,
        "programName": program.name,
        "localizedIssuerName": {"defaultValue": {"language": DEFAULT_LANGUAGE, "value": program.vendor.name}},
        "programLogo": {"sourceUri": {"uri": logo_url(program, app)},
                        "contentDescription": {"defaultValue": {"language": DEFAULT_LANGUAGE,
                                                                "value": program.name}}},
        "hexBackgroundColor": program.background_color,
        "reviewStatus": "UNDER_REVIEW",
        "multipleDevicesAndHoldersAllowedStatus": "ONE_USER_ALL_DEVICES",
        "localizedAccountNameLabel": localized(lambda _loc: _("Member")),
        "localizedAccountIdLabel": localized(lambda _loc: _("Card number")),
    }
    if program.reward_text:
        body["localizedRewardsTier"] = localized(lambda _loc: _("Reward"))
    body["callbackOptions"] = {"url": callback_url(app)}
    body.update(relevance.google_class_fields(locations or []))
    return body


def object_body(card: LoyaltyCard, app=None) -> dict:
    app = app or current_app
    program = card.program
    balance = card.stamps if program.is_stamps else card.points
    modules = []
    if program.is_stamps and program.stamps_required:
        modules.append({
            "id": "goal",
            "localizedHeader": localized(lambda _loc: _("Reward at")),
            "localizedBody": localized(lambda _loc: _("%(n)s stamps: %(reward)s", n=program.stamps_required,
                                                      reward=program.reward_text or "")),
        })
    elif not program.is_stamps:
        rewards = [r for r in program.rewards if r.active]
        if rewards:
            modules.append({
                "id": "rewards",
                "localizedHeader": localized(lambda _loc: _("Rewards")),
                "localizedBody": localized(lambda _loc: "\n".join(f"{r.points_cost} · {r.name}" for r in rewards)),
            })
    unit = localized(_unit_label(program))
    body = {
        "id": object_id(card, app),
        "classId": class_id(program, app),
        "state": "ACTIVE",
        "accountId": format_card_number(card.card_number),
        "accountName": card.customer_name or format_card_number(card.card_number),
        "barcode": {"type": "QR_CODE", "value": card.card_number,
                    "alternateText": format_card_number(card.card_number)},
        "loyaltyPoints": {
            "label": unit["defaultValue"]["value"],
            "localizedLabel": unit,
            "balance": {"int": balance},
        },
        "linksModuleData": {"uris": [{
            "uri": f"{app.config['PUBLIC_BASE_URL']}/c/{card.public_token}", "id": "card_page",
            "localizedDescription": localized(lambda _loc: _("Your card online"))}]},
    }
    if modules:
        body["textModulesData"] = modules
    return body
