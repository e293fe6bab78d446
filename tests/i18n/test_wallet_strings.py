"""Wallet passes speak the four languages: the .pkpass carries en/fr/de/lb ``.lproj/pass.strings`` whose keys cover
every label of pass.json, and Google's objects carry translatedValues for fr, de and lb."""
from __future__ import annotations

import importlib.util
import io
import re
import zipfile

import pytest

LANGS = ("en", "fr", "de", "lb")
STRINGS_LINE = re.compile(r'^"((?:[^"\\]|\\.)*)" = "((?:[^"\\]|\\.)*)";$')

pytestmark = pytest.mark.skipif(importlib.util.find_spec("portal.services.wallet.passes") is None,
                                reason="the pass builder (portal/services/wallet/passes.py) does not exist yet")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from tests.wallet_support.ca import make_test_pki

    return make_test_pki(tmp_path_factory.mktemp("pki"), key_password="i18n pass key")


@pytest.fixture
def app_config(compiled_translations, pki):
    return {"BABEL_TRANSLATION_DIRECTORIES": str(compiled_translations),
            "APPLE_PASS_TYPE_ID": pki.pass_type_id, "APPLE_TEAM_ID": pki.team_id,
            "APPLE_PASS_CERT": pki.pass_cert, "APPLE_PASS_KEY": pki.pass_key,
            "APPLE_PASS_KEY_PASSWORD": pki.key_password, "APPLE_WWDR_CERT": pki.wwdr_cert,
            "GOOGLE_WALLET_ISSUER_ID": "3388000000012345678"}


def parse_strings(data: bytes) -> dict[str, str]:
    table = {}
    for line in data.decode("utf-8").splitlines():
        if not line.strip():
            continue
        match = STRINGS_LINE.match(line.strip())
        assert match, f"not a .strings line: {line!r}"
        unescape = lambda s: re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1),  # noqa: E731
                                                                                             m.group(1)), s)
        table[unescape(match.group(1))] = unescape(match.group(2))
    return table


def label_keys(pass_json: dict) -> set[str]:
    """The keys pass.json expects the .strings files to translate (labels, change messages, key-like values)."""
    keys = set()
    style = pass_json["storeCard"]
    for group in style.values():
        for item in group:
            for name in ("label", "changeMessage"):
                if name in item:
                    keys.add(item[name])
            if isinstance(item.get("value"), str) and re.fullmatch(r"(label|text|change)_\w+", item["value"]):
                keys.add(item["value"])
    return keys


@pytest.mark.parametrize("kind", ["stamps", "points"])
def test_pkpass_carries_four_translated_lproj(app, factories, client, translations, kind):
    import json

    vendor = factories.vendor(locale="lb")
    program = factories.program(vendor, type=kind)
    card = factories.card(program, locale="lb")
    response = client.get(f"/c/{card.public_token}/pass.pkpass")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/vnd.apple.pkpass"
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    names = set(archive.namelist())
    assert {f"{lang}.lproj/pass.strings" for lang in LANGS} <= names, sorted(names)
    pass_json = json.loads(archive.read("pass.json"))
    wanted = label_keys(pass_json)
    assert wanted, "pass.json uses no localisable labels"
    tables = {lang: parse_strings(archive.read(f"{lang}.lproj/pass.strings")) for lang in LANGS}
    unit, message = ("Stamps", "%@ stamps") if kind == "stamps" else ("Points", "%@ points")
    for lang, table in tables.items():
        assert wanted <= set(table), f"{lang}: keys without a string: {sorted(wanted - set(table))}"
        assert table["label_card_number"] == translations[lang]["Card number"]
        assert table["label_balance"] == translations[lang][unit]
        assert table["change_balance"] == translations[lang][message]
        assert "%@" in table["change_balance"]
        assert all(value.strip() for value in table.values()), (lang, table)
    assert tables["fr"]["label_card_number"] == "Numéro de carte"
    assert tables["de"]["label_card_number"] == "Kartennummer"
    assert tables["lb"]["label_card_number"] == "Kaartennummer"
    for lang in ("fr", "de", "lb"):
        assert tables[lang]["label_card_page"] != tables["en"]["label_card_page"]


def test_google_objects_are_localised(app, factories, translations):
    from portal.services.wallet import google_objects, passes

    vendor = factories.vendor(locale="fr")
    stamps = factories.program(vendor)
    points = factories.program(vendor, type="points")
    # A card as the wallet code reads it: with its program, vendor and reward catalog (passes.card_for_pass).
    stamp_card, points_card = (passes.card_for_pass(token=factories.card(p).public_token) for p in (stamps, points))
    bodies = [google_objects.class_body(stamps), google_objects.object_body(stamp_card),
              google_objects.object_body(points_card)]

    def localized_strings(node, found):
        if isinstance(node, dict):
            if "defaultValue" in node and "translatedValues" in node:
                found.append(node)
            for value in node.values():
                localized_strings(value, found)
        elif isinstance(node, list):
            for value in node:
                localized_strings(value, found)
        return found

    found = [item for body in bodies for item in localized_strings(body, [])]
    assert len(found) >= 5
    for item in found:
        default = item["defaultValue"]
        assert default["language"] == "en"
        languages = {t["language"]: t["value"] for t in item["translatedValues"]}
        assert set(languages) == {"fr", "de", "lb"}, languages
        english = default["value"]
        if english in translations["fr"]:
            for lang in ("fr", "de", "lb"):
                assert languages[lang] == translations[lang][english], (lang, english, languages[lang])
    labels = [item for item in found if item["defaultValue"]["value"] == "Card number"]
    assert labels and {t["value"] for t in labels[0]["translatedValues"]} == {"Numéro de carte", "Kartennummer",
                                                                             "Kaartennummer"}
