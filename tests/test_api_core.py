"""API-level guarantees: authentication, tenancy, idempotency, public enrolment, admin API, error shapes."""
from __future__ import annotations

import re

import pytest

from portal.extensions import db

V = "/api/v1/vendor/loyalty"


# --- authentication ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "Bearer " + "x" * 500])
def test_vendor_api_requires_a_valid_key(client, shop, header):
    headers = {"Authorization": header} if header else {}
    r = client.get(f"{V}/programs", headers=headers)
    assert r.status_code == 401
    assert r.json["error"]["code"] == "unauthorized"


def test_admin_key_cannot_use_vendor_api_and_vice_versa(shop, factories, make_api):
    admin = make_api(factories.api_key(None))
    assert admin.get(f"{V}/programs").status_code == 403
    assert shop.api.get("/api/v1/admin/loyalty/stats").status_code == 403
    assert admin.get("/api/v1/admin/loyalty/stats").status_code == 200


def test_suspended_vendor_api_stops(shop):
    from portal.services import accounts

    accounts.set_vendor_active(shop.vendor, False)
    db.session.commit()
    r = shop.api.get(f"{V}/programs")
    assert r.status_code == 403 and r.json["error"]["code"] == "vendor_suspended"
    r = shop.api.get(f"/api/v1/loyalty/programs/{shop.stamps.slug}")
    assert r.status_code == 404


# --- tenancy -----------------------------------------------------------------------------------------------------

def _vendor_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(V):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, rule.rule


def test_tenancy_sweep_other_vendors_ids_are_404(app, shop, factories, make_api):
    """Every vendor route, called with another vendor's ids, answers 404 and changes nothing."""
    other = factories.vendor("Other shop")
    program = factories.program(other, require_pin=True)
    pin = factories.pin(program, "1111")
    card = factories.card(program)
    other_api = make_api(factories.api_key(other))
    tx = other_api.post(f"{V}/cards/{card.card_number}/stamps", json={"staff_pin": "1111"}).json["transaction"]
    message = other_api.post(f"{V}/messages", json={"program_id": program.id, "segment": "all",
                                                    "texts": {"en": "x"}}).json
    ids = {"program_id": program.id, "card_number": card.card_number, "pin_id": pin.id, "transaction_id": tx["id"],
           "message_id": message["id"]}
    checked = 0
    for method, rule in _vendor_routes(app):
        params = re.findall(r"<(?:int:)?(\w+)>", rule)
        if not params:
            continue
        path = re.sub(r"<(?:int:)?(\w+)>", lambda m: str(ids[m.group(1)]), rule)
        body = {"staff_pin": "1111", "reason": "x", "delta": 1, "points": 1, "reward_id": 1, "name": "x"}
        r = shop.api.client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {shop.key}"})
        assert r.status_code == 404, (method, path, r.status_code, r.get_json())
        assert r.json["error"]["code"] == "not_found"
        checked += 1
    assert checked >= 12
    # Listings never show the other vendor's data, even when asked by id.
    assert shop.api.get(f"{V}/cards?program_id={program.id}").json["cards"] == []
    assert all(c["program_id"] != program.id for c in shop.api.get(f"{V}/cards?q={card.card_number}").json["cards"])
    assert shop.api.get(f"{V}/pins?program_id={program.id}").json["pins"] == []
    assert shop.api.get(f"{V}/stats?program_id={program.id}").status_code == 404
    assert shop.api.post(f"{V}/pins", json={"program_id": program.id, "staff_name": "x"}).status_code == 404
    assert shop.api.post(f"{V}/cards", json={"program_id": program.id, "name": "x"}).status_code == 404
    # And nothing changed on the other vendor's card.
    assert other_api.get(f"{V}/cards/{card.card_number}").json["stamps"] == 1


# --- idempotency --------------------------------------------------------------------------------------------------

def test_idempotent_replay_returns_first_response_without_second_transaction(shop):
    url = f"{V}/cards/{shop.stamp_card.card_number}/stamps"
    headers = {"Idempotency-Key": "tap-1"}
    first = shop.api.post(url, json={"staff_pin": "4321"}, headers=headers)
    second = shop.api.post(url, json={"staff_pin": "4321"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json == second.json
    assert second.headers["Idempotent-Replayed"] == "true"
    history = shop.api.get(f"{url[:-7]}/transactions").json["transactions"]
    assert len(history) == 1
    assert history[0]["id"] == first.json["transaction"]["id"]


def test_same_key_other_body_is_422(shop):
    url = f"{V}/cards/{shop.stamp_card.card_number}/stamps"
    shop.api.post(url, json={"staff_pin": "4321"}, headers={"Idempotency-Key": "k"})
    r = shop.api.post(url, json={"staff_pin": "4321", "count": 2}, headers={"Idempotency-Key": "k"})
    assert r.status_code == 422
    assert r.json["error"]["code"] == "idempotency_key_reused"


def test_keys_are_scoped_to_the_api_key(shop, factories, make_api):
    url = f"{V}/cards/{shop.points_card.card_number}/points"
    other = make_api(factories.api_key(shop.vendor))
    a = shop.api.post(url, json={"points": 3}, headers={"Idempotency-Key": "same"})
    b = other.post(url, json={"points": 3}, headers={"Idempotency-Key": "same"})
    assert a.status_code == b.status_code == 201
    assert a.json["transaction"]["id"] != b.json["transaction"]["id"]
    assert b.json["card"]["points"] == 6


def test_refusal_is_replayed_but_a_validation_error_is_not_stored(shop):
    url = f"{V}/cards/{shop.stamp_card.card_number}/stamps"
    r1 = shop.api.post(url, json={"staff_pin": "0000"}, headers={"Idempotency-Key": "pin-typo"})
    r2 = shop.api.post(url, json={"staff_pin": "0000"}, headers={"Idempotency-Key": "pin-typo"})
    assert r1.status_code == r2.status_code == 403
    assert r1.json == r2.json  # the wrong PIN was counted once
    assert shop.api.post(url, json={"staff_pin": "0001"}).json["error"]["attempts_left"] == 3
    bad = shop.api.post(url, json={"count": 0, "staff_pin": "4321"}, headers={"Idempotency-Key": "v"})
    assert bad.status_code == 422
    fixed = shop.api.post(url, json={"count": 0, "staff_pin": "4321"}, headers={"Idempotency-Key": "v"})
    assert fixed.status_code == 422 and "Idempotent-Replayed" not in fixed.headers


def test_stored_idempotency_rows_do_not_give_the_pin_back(shop):
    """The fingerprint used to be a plain SHA-256 of the body with its staff_pin: 10⁴ hashes gave the PIN back."""
    import hashlib
    import json

    from portal.models import IdempotencyRecord

    url = f"{V}/cards/{shop.stamp_card.card_number}/stamps"
    first = shop.api.post(url, json={"staff_pin": "4321"}, headers={"Idempotency-Key": "till-1"})
    wrong = shop.api.post(url, json={"staff_pin": "0042"}, headers={"Idempotency-Key": "till-2"})
    assert first.status_code == 201 and wrong.status_code == 403
    rows = {r.key: r for r in db.session.query(IdempotencyRecord).filter(IdempotencyRecord.key.in_(["till-1",
                                                                                                    "till-2"]))}
    assert set(rows) == {"till-1", "till-2"}
    for key, pin in (("till-1", "4321"), ("till-2", "0042")):
        row = rows[key]
        assert len(row.request_hash) == 64
        guesses = set()
        for guess in (f"{n:04d}" for n in range(10_000)):
            for body in ({"staff_pin": guess}, {"staff_pin": int(guess)}):
                canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
                guesses.add(hashlib.sha256(f"POST {url}\n{canonical}".encode()).hexdigest())
                guesses.add(hashlib.sha256(canonical.encode()).hexdigest())
        assert row.request_hash not in guesses
        assert '"staff_pin"' not in row.response_body
        assert pin not in _scalars(json.loads(row.response_body)) and int(pin) not in _scalars(
            json.loads(row.response_body))
    # The keys still do their job: a replay replays, another body with the key is refused.
    replay = shop.api.post(url, json={"staff_pin": "4321"}, headers={"Idempotency-Key": "till-1"})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == first.json
    other_pin = shop.api.post(url, json={"staff_pin": "4322"}, headers={"Idempotency-Key": "till-1"})
    assert other_pin.status_code == 422 and other_pin.json["error"]["code"] == "idempotency_key_reused"


def _scalars(value) -> list:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _scalars(v)]
    if isinstance(value, list):
        return [x for v in value for x in _scalars(v)]
    return [value]


def test_secret_fields_are_dropped_from_a_stored_response(shop):
    from portal.services import idempotency

    assert idempotency._without_secrets({"a": [{"staff_pin": "1234", "b": 1}], "pin": "9", "c": {"pin": 1}}) == \
        {"a": [{"b": 1}], "c": {}}


def test_idempotency_records_purged_after_ttl(app, shop, runner):
    import datetime as dt

    import time_machine

    url = f"{V}/cards/{shop.points_card.card_number}/points"
    shop.api.post(url, json={"points": 1}, headers={"Idempotency-Key": "old"})
    with time_machine.travel(dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=23)):
        result = runner.invoke(args=["loyalty", "purge-idempotency", "--json"])
        assert '"removed": 0' in result.output
    with time_machine.travel(dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=49)):
        result = runner.invoke(args=["loyalty", "purge-idempotency", "--json"])
        assert '"removed": 1' in result.output


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "tab\tkey"])
def test_bad_idempotency_keys(shop, key):
    r = shop.api.post(f"{V}/cards/{shop.points_card.card_number}/points", json={"points": 1},
                      headers={"Idempotency-Key": key})
    assert r.status_code in (400, 422)
    assert r.json["error"]["code"] == "validation_error"


# --- public enrolment ---------------------------------------------------------------------------------------------

def test_public_program_and_enrolment(client, shop):
    r = client.get(f"/api/v1/loyalty/programs/{shop.stamps.slug}")
    assert r.status_code == 200
    assert "require_pin" not in r.json and r.json["name"] == "Coffee card"
    r = client.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll",
                    json={"name": "Léa", "email": "Lea@Example.LU", "locale": "lu", "consent": True})
    assert r.status_code == 201
    body = r.json
    assert re.fullmatch(r"\d{10}", body["card_number"])
    assert body["card_url"].startswith("http://localhost/c/")
    assert body["card_number"] not in body["card_url"]
    assert {"pkpass_url", "google_save_url"} <= set(body)
    again = client.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll",
                        json={"email": "lea@example.lu", "consent": True})
    assert (again.status_code, again.json) == (202, {"status": "link_sent"})  # the card is not handed out again
    card = shop.api.get(f"{V}/cards/{body['card_number']}").json
    assert card["customer"]["locale"] == "lb" and card["customer"]["email"] == "lea@example.lu"


def test_enrolment_by_phone_normalises(client, shop):
    first = client.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll",
                        json={"phone": "621 123 456", "consent": True})
    again = client.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll",
                        json={"phone": "+352621123456", "consent": True})
    assert first.status_code == 201 and first.json["card_number"]
    assert (again.status_code, again.json) == (202, {"status": "ask_at_till"})  # the same card: ask at the till


@pytest.mark.parametrize("consent", [None, False, "true", 1, "yes"])
def test_enrolment_requires_consent(client, shop, consent):
    body = {"email": "lea@example.lu"} if consent is None else {"email": "lea@example.lu", "consent": consent}
    r = client.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll", json=body)
    assert r.status_code == 422 and r.json["error"]["code"] == "validation_error"
    assert list(r.json["error"]["fields"]) == ["consent"] and "consent" in r.json["error"]["fields"]["consent"][0]
    card = shop.api.get(f"{V}/cards?q=lea@example.lu").json
    assert card["cards"] == []


@pytest.mark.parametrize("body", [{}, {"name": "x"}, {"email": "not-an-email"}, {"phone": "abc"},
                                  {"email": "a@b.lu", "locale": "xx"}, {"email": ["a@b.lu"]}])
def test_enrolment_validation(client, shop, body):
    r = client.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll", json=body)
    assert r.status_code == 422
    assert r.json["error"]["code"] == "validation_error" and r.json["error"]["fields"]


def test_enrolment_unknown_program(client):
    r = client.post("/api/v1/loyalty/programs/nope/enroll", json={"email": "a@b.lu"})
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True, "ENROLL_RATE_LIMIT": "3 per hour"}],
                         indirect=True)
def test_enrolment_is_rate_limited(app, client, shop):
    url = f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll"
    responses = [client.post(url, json={"email": f"p{i}@example.lu", "consent": True}) for i in range(5)]
    assert [r.status_code for r in responses] == [201, 201, 201, 429, 429]
    assert responses[-1].json["error"]["code"] == "rate_limited"
    assert int(responses[-1].headers["Retry-After"]) > 0


# --- vendor card endpoints ----------------------------------------------------------------------------------------

def test_card_search_and_lookup(shop, factories):
    factories.card(shop.stamps, name="Marie Schmit", email="marie@example.lu", phone="+352691000111")
    api = shop.api
    for q in ("marie", "Schmit", "marie@ex", "691000"):
        found = api.get(f"{V}/cards", query_string={"q": q}).json["cards"]
        assert [c["customer"]["name"] for c in found] == ["Marie Schmit"], q
    number = found[0]["card_number"]
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
    assert api.get(f"{V}/cards/{spaced}").json["card_number"] == number
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    r = api.get(f"{V}/cards/{typo}")
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"  # no such card, whatever its shape
    assert "check digit" in r.json["error"]["message"]  # and it says why, without asking the database


def test_vendor_creates_card(shop):
    r = shop.api.post(f"{V}/cards", json={"program_id": shop.stamps.id, "name": "Walk-in"})
    assert r.status_code == 201 and r.json["customer"]["name"] == "Walk-in"


# --- admin ----------------------------------------------------------------------------------------------------------

def test_admin_lists_all_programs_paginated(shop, factories, make_api):
    other = factories.vendor("Second shop")
    factories.program(other)
    admin = make_api(factories.api_key(None))
    page1 = admin.get("/api/v1/admin/loyalty/programs?per_page=2").json
    page2 = admin.get("/api/v1/admin/loyalty/programs?per_page=2&page=2").json
    assert page1["total"] == 3 and len(page1["programs"]) == 2 and len(page2["programs"]) == 1
    assert {p["vendor"]["slug"] for p in page1["programs"] + page2["programs"]} == {shop.vendor.slug, other.slug}
    stats = admin.get("/api/v1/admin/loyalty/stats").json
    assert stats["vendors"] == 2 and stats["cards"] == 2


# --- error shapes ---------------------------------------------------------------------------------------------------

def test_unknown_route_and_method_are_json(shop):
    assert shop.api.get("/api/v1/nowhere").json["error"]["code"] == "not_found"
    r = shop.api.client.put(f"{V}/programs", headers={"Authorization": f"Bearer {shop.key}"})
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"


def test_malformed_bodies_are_clean_400s(shop):
    url = f"{V}/cards/{shop.stamp_card.card_number}/stamps"
    headers = {"Authorization": f"Bearer {shop.key}", "Content-Type": "application/json"}
    for raw in ("{", "[1,2]", "\"text\"", "null", "\xff"):
        r = shop.api.client.post(url, data=raw.encode("latin-1"), headers=headers)
        assert r.status_code == 400, raw
        assert r.json["error"]["code"] == "validation_error"


@pytest.mark.parametrize("app_config", [{"PROXY_COUNT": 1}], indirect=True)
def test_behind_a_proxy_the_forwarded_scheme_is_trusted(client):
    r = client.get("/api/v1/openapi.json", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert "Strict-Transport-Security" in r.headers


def test_without_proxy_setting_forwarded_headers_are_ignored(client):
    r = client.get("/api/v1/openapi.json", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in r.headers
