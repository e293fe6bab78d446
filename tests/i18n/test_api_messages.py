"""API error messages are translated (the ``message``, never the ``code``), with times in the shop's timezone and
formatted for the language."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from babel import dates

UTC = dt.timezone.utc
LANGS = ("en", "fr", "de", "lb")
COOLDOWN = "This card was stamped a moment ago. Next stamp possible at %(until)s."
DAILY = "This card reached today's limit of %(limit)s stamps. Next stamp possible at %(until)s."


def stamp(shop, lang=None):
    headers = {"Accept-Language": lang} if lang else {}
    return shop.api.post(f"/api/v1/vendor/loyalty/cards/{shop.stamp_card.card_number}/stamps",
                         json={"count": 1, "staff_pin": "4321"}, headers=headers)


@pytest.mark.parametrize("moment, local_time", [
    (dt.datetime(2026, 7, 1, 12, 20, tzinfo=UTC), "14:35"),   # summer: UTC+2
    (dt.datetime(2026, 1, 15, 12, 20, tzinfo=UTC), "13:35"),  # winter: UTC+1
])
def test_cooldown_refusal_is_translated_with_the_shops_local_time(shop, translations, moment, local_time):
    with time_machine.travel(moment, tick=False):
        first = stamp(shop)
        assert first.status_code in (200, 201), first.get_json()
        bodies = {}
        for lang in LANGS:
            response = stamp(shop, lang)
            body = response.get_json()["error"]
            assert response.status_code == 429, body
            assert response.headers["Retry-After"] == str(15 * 60)
            bodies[lang] = body
    until = moment + dt.timedelta(minutes=15)
    for lang, body in bodies.items():
        assert body["code"] == "cooldown_active"
        assert body["retry_after"] == 15 * 60
        assert dt.datetime.fromisoformat(body["available_at"]) == until
        shown = dates.format_time(until, "short", tzinfo=ZoneInfo("Europe/Luxembourg"), locale=lang)
        assert body["message"] == translations[lang][COOLDOWN] % {"until": shown}, (lang, body["message"])
        if lang != "en":
            assert body["message"] != COOLDOWN % {"until": shown}
            assert local_time in body["message"], body["message"]  # 24-hour clock, the shop's timezone
    assert "2:35" in bodies["en"]["message"] or "1:35" in bodies["en"]["message"]
    assert bodies["fr"]["message"].startswith("Cette carte vient d’être tamponnée.")
    assert bodies["de"]["message"].startswith("Diese Karte wurde gerade erst gestempelt.")
    assert bodies["lb"]["message"].startswith("Dës Kaart gouf grad eréischt gestempelt.")


def test_daily_limit_refusal_names_tomorrow_in_the_language(shop, translations):
    start = dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # 10:00 in Luxembourg
    for i in range(5):
        with time_machine.travel(start + dt.timedelta(minutes=20 * i), tick=False):
            assert stamp(shop).status_code in (200, 201)
    with time_machine.travel(start + dt.timedelta(minutes=20 * 5), tick=False):
        bodies = {lang: stamp(shop, lang).get_json()["error"] for lang in LANGS}
    tz = ZoneInfo("Europe/Luxembourg")
    midnight = dt.datetime(2026, 3, 11, 0, 0, tzinfo=tz)
    for lang, body in bodies.items():
        assert body["code"] == "daily_limit_reached", body
        assert dt.datetime.fromisoformat(body["available_at"]) == midnight
        shown = dates.format_datetime(midnight, "short", tzinfo=tz, locale=lang)
        assert body["message"] == translations[lang][DAILY] % {"limit": 5, "until": shown}, body["message"]
    assert "11.03.26" in bodies["de"]["message"] and "00:00" in bodies["de"]["message"]
    assert "11/03/2026" in bodies["fr"]["message"]
    assert "11.03.26" in bodies["lb"]["message"]


def test_wrong_pin_is_translated_and_keeps_its_code(shop, translations):
    responses = {lang: shop.api.post(f"/api/v1/vendor/loyalty/cards/{shop.stamp_card.card_number}/stamps",
                                     json={"count": 1, "staff_pin": "0000"}, headers={"Accept-Language": lang})
                 for lang in ("fr", "de", "lb")}
    for lang, response in responses.items():
        body = response.get_json()["error"]
        assert response.status_code == 403, body
        assert body["code"] == "pin_invalid"
        template = translations[lang]["Wrong PIN. %(attempts_left)s attempt(s) left before the PIN pad locks."]
        assert body["message"] == template % {"attempts_left": body["attempts_left"]}


def test_validation_messages_are_translated_per_field(shop, translations):
    response = shop.api.post("/api/v1/vendor/loyalty/programs", json={"type": "stamps", "name": ""},
                             headers={"Accept-Language": "lu"})
    body = response.get_json()["error"]
    assert response.status_code == 422, body
    assert body["code"] == "validation_error"
    assert body["message"] == translations["lb"]["Some fields are not valid."]
    assert translations["lb"]["This field is required."] in body["fields"]["name"]


def test_http_errors_are_translated(client, translations):
    response = client.get("/api/v1/no-such-thing", headers={"Accept-Language": "fr"})
    body = response.get_json()["error"]
    assert response.status_code == 404
    assert body["code"] == "not_found"
    assert body["message"] == translations["fr"]["Not found."]
    unauthorized = client.get("/api/v1/vendor/loyalty/programs", headers={"Accept-Language": "de"}).get_json()
    assert unauthorized["error"]["code"] == "unauthorized"
    assert unauthorized["error"]["message"] == \
        translations["de"]["A valid API key is required (Authorization: Bearer …)."]
