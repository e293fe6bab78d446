"""Fuzzing the JSON API: schemathesis generates requests from portal/api_spec/openapi.json and runs them against
the app (in-process WSGI, a fresh database and shop per operation), then hand-written hostile inputs.

Every answer must be a clean, documented JSON response: never a 5xx, a status documented for the operation, a
body matching the documented schema, the documented content type. Bounded for CI: at most ``MAX_EXAMPLES``
generated cases per operation and generation mode (plus schemathesis' examples and coverage phases, which are
deterministic), derandomized so a failure reproduces; the module runs in well under a minute on two cores.
"""
from __future__ import annotations

import http.client
import json
import zlib
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)
from support import rewards_of

SPEC_PATH = Path(__file__).resolve().parents[2] / "portal" / "api_spec" / "openapi.json"
SPEC = json.loads(SPEC_PATH.read_text())
BASE_URL = "http://localhost/api/v1"
V = "/api/v1/vendor/loyalty"
MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_dict(SPEC)
schema.config.update(base_url=BASE_URL)
# Positive cases reach the success paths; negative ones (wrong types, missing fields, bad headers) must be refused
# with a documented 4xx. The examples and coverage phases add boundary values (minimum, maximum, lengths).
schema.config.generation.update(modes=["positive", "negative"], max_examples=MAX_EXAMPLES, deterministic=True,
                                database="none")


class Env:
    """The seeded shop, and the real ids the fuzzer substitutes into some cases so it reaches the success paths."""


@pytest.fixture
def env(app, shop, factories):
    e = Env()
    e.app, e.shop = app, shop
    e.vendor_key, e.admin_key = shop.key, factories.api_key(None)
    e.cards = [shop.stamp_card.card_number, shop.points_card.card_number]
    e.program_ids = [shop.stamps.id, shop.points.id]
    e.pin_ids = [shop.pin.id, shop.points_pin.id]
    e.reward_ids = [r.id for r in rewards_of(shop.points)]
    e.slugs = [shop.stamps.slug, shop.points.slug]
    # A little history, so voids and transaction lists have rows to work on. Without staff PINs: deleting a PIN
    # that the ledger references is a known 500 (see test_deleting_a_used_pin_is_not_a_server_error).
    tx_ids = []
    for url, body in ((f"{V}/cards/{e.cards[0]}/adjustments", {"delta": 3, "reason": "Paper card"}),
                      (f"{V}/cards/{e.cards[1]}/points", {"points": 150})):
        response = shop.api.post(url, json=body)
        assert response.status_code == 201, response.get_json()
        tx_ids.append(response.get_json()["transaction"]["id"])
    e.transaction_ids = tx_ids
    return e


def _sometimes(generated, real_values, label):
    """The generated value or one of the real ones, chosen by a hash of the generated value: the same case always
    gets the same substitution (Hypothesis replays cases), and runs are reproducible."""
    choices = [generated, *real_values]
    return choices[zlib.crc32(f"{label}={generated!r}".encode()) % len(choices)]


def _substitute(case, e: Env) -> None:
    path = case.path_parameters or {}
    for name, values in (("card_number", e.cards), ("program_id", e.program_ids), ("pin_id", e.pin_ids),
                         ("transaction_id", e.transaction_ids), ("slug", e.slugs)):
        if name in path:
            path[name] = _sometimes(path[name], values, name)
    if case.query and "program_id" in case.query:
        case.query["program_id"] = _sometimes(case.query["program_id"], e.program_ids, "query.program_id")
    if isinstance(case.body, dict):
        for name, values in (("staff_pin", ["4321"]), ("program_id", e.program_ids), ("reward_id", e.reward_ids)):
            if name in case.body:
                case.body[name] = _sometimes(case.body[name], values, f"body.{name}")
    if case.headers and isinstance(case.headers.get("Idempotency-Key"), str):
        # Generated keys are few ("0", "00" …) and would mostly be reused with another body (422): half the time,
        # derive the key from the request, so the same request replays and another one runs.
        derived = f"fuzz-{zlib.crc32(repr((case.path, path, case.body)).encode()):08x}"
        case.headers["Idempotency-Key"] = _sometimes(case.headers["Idempotency-Key"], [derived], "key")


def _auth(case, e: Env) -> dict:
    if case.path.startswith("/vendor/"):
        return {"Authorization": f"Bearer {e.vendor_key}"}
    if case.path.startswith("/admin/"):
        return {"Authorization": f"Bearer {e.admin_key}"}
    return {}


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_conforms_to_its_document(case, env):
    _substitute(case, env)
    response = case.call(app=env.app, base_url=BASE_URL, headers=_auth(case, env))
    case.validate_response(response, checks=CHECKS, headers=_auth(case, env))


# --- hand-written hostile input -----------------------------------------------------------------------------------

ERROR_SCHEMA = Draft202012Validator(
    {"$ref": "urn:spec#/components/schemas/Error"},
    registry=Registry().with_resource("urn:spec", Resource.from_contents(SPEC, default_specification=DRAFT202012)))


def assert_clean_error(response, status, code, *, field=None):
    """A JSON error envelope (as documented) with this status and stable code; ``field`` in ``fields``."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, text[:500])
    assert response.mimetype == "application/json", (response.mimetype, text[:200])
    body = response.get_json()
    errors = list(ERROR_SCHEMA.iter_errors(body))
    assert not errors, (errors[0].message, body)
    assert body["error"]["code"] == code, body
    if field is not None:
        assert field in body["error"].get("fields", {}), body
    return body


@pytest.fixture
def raw(shop, client):
    """POST raw bytes with the vendor key."""

    def post(path, data, content_type="application/json"):
        return client.post(path, data=data, content_type=content_type, headers={"Authorization": f"Bearer {shop.key}"})

    return post


@pytest.fixture
def stamps_url(shop):
    return f"{V}/cards/{shop.stamp_card.card_number}/stamps"


@pytest.mark.parametrize("data", [
    b'{"count": 1', b"{'count': 1}", b"{count: 1}", b'{"count": 1}}', b"\xff\xfe\x00garbage", b"\x00",
    b'{"note": "\xc3\x28"}',  # invalid UTF-8
    b"[" * 100_000,  # nested deeper than the parser's recursion limit
    b'{"count": 1' + b"0" * 5000 + b"}",  # an integer beyond Python's 4300-digit conversion limit
], ids=["truncated", "single-quotes", "bare-key", "trailing", "binary", "nul", "bad-utf8", "deep", "int-digits"])
def test_malformed_json_is_400(raw, stamps_url, data):
    assert_clean_error(raw(stamps_url, data), 400, "validation_error")


@pytest.mark.parametrize("data", [b"[]", b'[{"count": 1}]', b"1", b"-0", b"1e308", b'"count"', b"null", b"true"])
def test_a_body_that_is_not_an_object_is_400(raw, stamps_url, shop, data):
    assert_clean_error(raw(stamps_url, data), 400, "validation_error")
    assert_clean_error(raw(f"{V}/programs", data), 400, "validation_error")
    assert_clean_error(raw(f"{V}/pins", data), 400, "validation_error")
    response = shop.api.client.patch(f"{V}/programs/{shop.stamps.id}", data=data, content_type="application/json",
                                     headers={"Authorization": f"Bearer {shop.key}"})
    assert_clean_error(response, 400, "validation_error")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/xml", ""])
def test_wrong_content_type_is_400(raw, stamps_url, content_type):
    response = raw(stamps_url, b'{"staff_pin": "4321"}', content_type=content_type)
    assert_clean_error(response, 400, "validation_error")


def test_json_suffix_content_types_are_accepted(raw, stamps_url):
    response = raw(stamps_url, b'{"staff_pin": "4321"}', content_type="application/merge-patch+json")
    assert response.status_code == 201, response.get_json()


def test_oversized_bodies_are_413(raw, stamps_url, client, shop):
    big = b'{"note": "' + b"x" * (2 * 1024 * 1024 + 1) + b'"}'
    assert_clean_error(raw(stamps_url, big), 413, "payload_too_large")
    assert_clean_error(raw(f"{V}/programs", big), 413, "payload_too_large")
    response = client.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll", data=big,
                           content_type="application/json")
    assert_clean_error(response, 413, "payload_too_large")


def test_oversized_chunked_bodies_are_413(shop, live_server):
    """Without Content-Length (Transfer-Encoding: chunked, through a real HTTP server) the limit holds too."""
    host, port = live_server.url.removeprefix("http://").split(":")
    url = f"{V}/cards/{shop.stamp_card.card_number}/stamps"
    headers = {"Authorization": f"Bearer {shop.key}", "Content-Type": "application/json"}

    def send(chunks):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("POST", url, body=iter(chunks), headers=headers, encode_chunked=True)
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type"), json.loads(response.read())
        finally:
            conn.close()

    status, content_type, body = send([b'{"staff_pin": "4321", "note": "', *[b"x" * 65536] * 40, b'"}'])
    assert (status, content_type, body["error"]["code"]) == (413, "application/json", "payload_too_large")
    status, _, body = send([b'{"staff_pin": ', b'"4321"}'])
    assert status == 201, body


def test_unicode_is_kept_and_nul_is_refused(shop, stamps_url, client):
    note = "Zoë 🎉 ☕ مرحبا \u200f עברית ñ\u0301 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \t line\nbreak"
    response = shop.api.post(stamps_url, json={"staff_pin": "4321", "note": note})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["transaction"]["note"] == note.strip()
    assert_clean_error(shop.api.post(stamps_url, json={"staff_pin": "4321", "note": "a\x00b"}), 422,
                       "validation_error", field="note")
    assert_clean_error(shop.api.post(f"{V}/pins", json={"program_id": shop.stamps.id, "staff_name": "\x00"}), 422,
                       "validation_error", field="staff_name")
    assert_clean_error(shop.api.post(f"{V}/programs", json={"type": "stamps", "name": "N\x00",
                                                            "stamps_required": 5, "reward_text": "x"}),
                       422, "validation_error", field="name")
    response = client.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll",
                           json={"name": "Jo\x00", "email": "jo@example.com"})
    assert_clean_error(response, 422, "validation_error", field="name")
    # a PIN with a NUL is just a wrong PIN
    assert_clean_error(shop.api.post(stamps_url, json={"staff_pin": "43\x0021"}), 403, "pin_invalid")
    # NUL and odd characters in the path and the query
    assert_clean_error(client.get("/api/v1/loyalty/programs/a%00b"), 404, "not_found")
    assert_clean_error(client.get("/api/v1/loyalty/programs/caf%C3%A9-%F0%9F%8E%89"), 404, "not_found")
    assert_clean_error(shop.api.get(f"{V}/cards/12345%0067890"), 404, "not_found")
    for q in ("a%00b", "%F0%9F%8E%89", "%25_%5C", "%FF%FE"):
        response = shop.api.get(f"{V}/cards?q={q}")
        assert response.status_code == 200, (q, response.get_data(as_text=True)[:300])
        assert response.get_json()["cards"] == []


def test_lone_surrogates_are_refused(shop, stamps_url, client):
    """'\\ud800' is valid JSON but no UTF-8 text: it used to reach the database and the ledger hash (500)."""
    headers = {"Authorization": f"Bearer {shop.key}"}
    for url, data, field in (
            (stamps_url, b'{"staff_pin": "4321", "note": "a\\ud800b"}', "note"),
            (f"{V}/pins", b'{"program_id": %d, "staff_name": "\\udfff"}' % shop.stamps.id, "staff_name"),
            (f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll", b'{"email": "a@b.lu", "name": "\\ud83d"}',
             "name")):
        response = client.post(url, data=data, content_type="application/json", headers=headers)
        assert_clean_error(response, 422, "validation_error", field=field)
    # a proper surrogate pair is just an emoji
    response = client.post(stamps_url, data=b'{"staff_pin": "4321", "note": "\\ud83c\\udf89"}',
                           content_type="application/json", headers=headers)
    assert response.status_code == 201 and response.get_json()["transaction"]["note"] == "\U0001f389"


HUGE = [1e308, -1e308, 10**30, -(10**30), 2**31, 2**63, "NaN", "Infinity", "-Infinity", "1e308", "1e999999",
        "-0", -0.0, 1.5, "1.5", True, "0x10", "12abc", [], {}, {"$gt": 0}]


@pytest.mark.parametrize("value", HUGE, ids=repr)
def test_huge_and_odd_numbers_are_422(shop, stamps_url, value):
    api = shop.api
    card = shop.points_card.card_number
    assert_clean_error(api.post(stamps_url, json={"staff_pin": "4321", "count": value}), 422, "validation_error",
                       field="count")
    assert_clean_error(api.post(f"{V}/cards/{card}/points", json={"points": value}), 422, "validation_error",
                       field="points")
    if value not in (1.5, "1.5"):  # 1.5 is a valid amount (floats are tolerated; the document says strings)
        assert_clean_error(api.post(f"{V}/cards/{card}/points", json={"amount": value}), 422, "validation_error",
                           field="amount")
    assert_clean_error(api.post(f"{V}/cards/{card}/adjustments", json={"delta": value, "reason": "x"}), 422,
                       "validation_error", field="delta")
    for url, name in ((f"{V}/cards", "program_id"), (f"{V}/pins", "program_id"),
                      (f"{V}/cards/{card}/points/redeem", "reward_id"), (stamps_url, "staff_pin_id")):
        response = api.post(url, json={name: value, "staff_name": "x", "staff_pin": "4321"})
        assert_clean_error(response, 422, "validation_error", field=name)
    assert_clean_error(api.patch(f"{V}/programs/{shop.stamps.id}", json={"stamps_required": value}), 422,
                       "validation_error", field="stamps_required")
    if value not in (1.5, "1.5"):
        assert_clean_error(api.patch(f"{V}/programs/{shop.points.id}", json={"points_per_unit": value}), 422,
                           "validation_error", field="points_per_unit")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-0", b"1" + b"0" * 30])
def test_non_standard_json_numbers_are_422(raw, stamps_url, shop, literal):
    """Python's parser accepts NaN/Infinity literals; they must be refused like any other bad number."""
    for name in ("count", "staff_pin_id"):
        response = raw(stamps_url, b'{"staff_pin": "4321", "' + name.encode() + b'": ' + literal + b"}")
        assert_clean_error(response, 422, "validation_error", field=name)
    points_url = f"{V}/cards/{shop.points_card.card_number}/points"
    for name in ("amount", "points"):
        response = raw(points_url, b'{"staff_pin": "4321", "' + name.encode() + b'": ' + literal + b"}")
        assert_clean_error(response, 422, "validation_error", field=name)


@pytest.mark.parametrize("path_id", ["0", "2147483648", "9" * 30, "9" * 5000, "-1", "1.5", "1e3", "%C2%B2"])
def test_out_of_range_path_ids_are_404(shop, path_id):
    api = shop.api
    assert_clean_error(api.get(f"{V}/programs/{path_id}"), 404, "not_found")
    response = api.patch(f"{V}/programs/{path_id}", json={"name": "x"})
    if len(path_id) > 4300:  # int() refuses it inside Werkzeug's converter, which then answers for the GET rule
        assert_clean_error(response, 405, "method_not_allowed")
    else:
        assert_clean_error(response, 404, "not_found")
    assert_clean_error(api.delete(f"{V}/pins/{path_id}"), 404, "not_found")
    assert_clean_error(api.post(f"{V}/pins/{path_id}/unlock"), 404, "not_found")
    assert_clean_error(api.post(f"{V}/transactions/{path_id}/void", json={"reason": "x"}), 404, "not_found")


@pytest.mark.parametrize("value", ["%C2%B2", "%D9%A1", "-1", "1.5", "abc", "1e3", "%00", "9" * 5000])
def test_bad_query_numbers_are_400(shop, factories, make_api, value):
    api = shop.api
    for url, name in ((f"{V}/cards", "limit"), (f"{V}/cards", "offset"), (f"{V}/cards", "program_id"),
                      (f"{V}/cards/{shop.stamp_card.card_number}/transactions", "before_id"),
                      (f"{V}/pins", "program_id"), (f"{V}/stats", "days")):
        response = api.get(f"{url}?{name}={value}")
        if value == "9" * 5000:  # digits: clamped to the maximum, not an error
            assert response.status_code in (200, 404), response.get_data(as_text=True)[:300]
        else:
            assert_clean_error(response, 400, "validation_error", field=name)
    admin = make_api(factories.api_key(None))
    response = admin.get(f"/api/v1/admin/loyalty/programs?page={value}")
    if value == "9" * 5000:
        assert response.status_code == 200
    else:
        assert_clean_error(response, 400, "validation_error", field="page")


def _luhn(body: str) -> str:
    from portal.services.cards import luhn_check_digit

    return luhn_check_digit(body)


@pytest.mark.parametrize("number", [
    "typo", "123456789", "12345678901", "abcdefghij", "1234-5678-9", "0" * 9 + "1", "1" * 10_000, "%00" * 10,
    "%D9%A1%D9%A2%D9%A3%D9%A4%D9%A5%D9%A6%D9%A7%D9%A8%D9%A9%D9%A0",
])
def test_bad_card_numbers_are_404(shop, number):
    """A card number in the URL names a resource: whatever its shape, no such card is 404 (no database look-up)."""
    if number == "typo":
        real = shop.stamp_card.card_number
        number = real[:-1] + str((int(real[-1]) + 1) % 10)
    api = shop.api
    for response in (api.get(f"{V}/cards/{number}"), api.get(f"{V}/cards/{number}/transactions"),
                     api.post(f"{V}/cards/{number}/stamps", json={"staff_pin": "4321"}),
                     api.post(f"{V}/cards/{number}/stamps/redeem", json={"staff_pin": "4321"}),
                     api.post(f"{V}/cards/{number}/points", json={"points": 1}),
                     api.post(f"{V}/cards/{number}/points/redeem", json={"reward_id": 1}),
                     api.post(f"{V}/cards/{number}/adjustments", json={"delta": 1, "reason": "x"})):
        assert_clean_error(response, 404, "not_found")


def test_a_card_number_with_the_right_check_digit_but_no_card_is_404(shop):
    body = "987654321"
    assert_clean_error(shop.api.get(f"{V}/cards/{body}{_luhn(body)}"), 404, "not_found")
    spaced = f"{body[:3]} {body[3:6]} {body[6:]}{_luhn(body)}".replace(" ", "%20")
    assert_clean_error(shop.api.get(f"{V}/cards/{spaced}"), 404, "not_found")


def test_superscript_digits_in_a_card_number_are_404(shop):
    assert_clean_error(shop.api.get(f"{V}/cards/" + "%C2%B2" * 10), 404, "not_found")


def test_very_long_path_segments(shop, client):
    long = "a" * 20_000
    assert_clean_error(client.get(f"/api/v1/loyalty/programs/{long}"), 404, "not_found")
    assert_clean_error(client.post(f"/api/v1/loyalty/programs/{long}/enroll", json={"email": "a@b.lu"}), 404,
                       "not_found")
    assert_clean_error(shop.api.get(f"{V}/{long}"), 404, "not_found")
    response = shop.api.get(f"{V}/cards?q={long}")
    assert response.status_code == 200 and response.get_json()["cards"] == []


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "tab\there", "nl\x01"], ids=["empty", "space", "long", "tab",
                                                                                 "control"])
def test_bad_idempotency_keys_are_422(shop, stamps_url, key):
    response = shop.api.post(stamps_url, json={"staff_pin": "4321"}, headers={"Idempotency-Key": key})
    assert_clean_error(response, 422, "validation_error")


def test_idempotency_key_edge_cases(shop, stamps_url):
    api = shop.api
    first = api.post(stamps_url, json={"staff_pin": "4321"}, headers={"Idempotency-Key": "x" * 255})
    assert first.status_code == 201
    replay = api.post(stamps_url, json={"staff_pin": "4321"}, headers={"Idempotency-Key": "x" * 255})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    # the same key on another card is another request
    other = f"{V}/cards/{shop.points_card.card_number}/points"
    assert_clean_error(api.post(other, json={"points": 1}, headers={"Idempotency-Key": "x" * 255}), 422,
                       "idempotency_key_reused")
    # a malformed body with a key is a plain 400 and does not burn the key
    bad = api.client.post(stamps_url, data=b"{", content_type="application/json",
                          headers={"Authorization": f"Bearer {shop.key}", "Idempotency-Key": "k2"})
    assert_clean_error(bad, 400, "validation_error")
    assert api.post(other, json={"points": 1}, headers={"Idempotency-Key": "k2"}).status_code == 201


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 10_000,
                                    "Bearer lk_\x00", "bearer lk_nope", "Token abc"])
def test_bad_authorization_is_401(client, header):
    response = client.get(f"{V}/programs", headers={"Authorization": header} if header else {})
    assert_clean_error(response, 401, "unauthorized")
    response = client.get("/api/v1/admin/loyalty/stats", headers={"Authorization": header} if header else {})
    assert_clean_error(response, 401, "unauthorized")


def test_suspended_vendor_is_403(shop, app):
    from portal.extensions import db
    from portal.services import accounts

    accounts.set_vendor_active(shop.vendor, False)
    db.session.commit()
    assert_clean_error(shop.api.get(f"{V}/programs"), 403, "vendor_suspended")
    assert_clean_error(shop.api.client.get(f"/api/v1/loyalty/programs/{shop.stamps.slug}"), 404, "not_found")


def test_unknown_routes_and_methods_are_json(shop, client):
    assert_clean_error(client.get("/api/v1/nope"), 404, "not_found")
    assert_clean_error(shop.api.get(f"{V}/nope"), 404, "not_found")
    response = shop.api.delete(f"{V}/programs")
    assert_clean_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert_clean_error(client.put("/api/v1/openapi.json"), 405, "method_not_allowed")


def test_wrong_types_in_program_bodies_are_422(shop):
    api = shop.api
    for body, field in (({"type": ["stamps"], "name": "x"}, "type"), ({"type": {"a": 1}, "name": "x"}, "type"),
                        ({"type": "stamps", "name": 5, "stamps_required": 5, "reward_text": "x"}, "name"),
                        ({"type": "points", "name": "x", "points_per_unit": "1", "rewards": {"a": 1}}, "rewards"),
                        ({"type": "points", "name": "x", "points_per_unit": "1", "rewards": [1]}, "rewards.0"),
                        ({"type": "points", "name": "x", "points_per_unit": "1",
                          "rewards": [{"name": "a", "points_cost": 1}] * 51}, "rewards"),
                        ({"type": "stamps", "name": "x", "stamps_required": 5, "reward_text": "x",
                          "require_pin": "maybe"}, "require_pin"),
                        ({"type": "stamps", "name": "x", "stamps_required": 5, "reward_text": "x",
                          "background_color": "red"}, "background_color"),
                        ({"type": "stamps", "name": "x", "stamps_required": 5, "reward_text": "x",
                          "currency": "€€€"}, "currency"),
                        ({"type": "stamps", "name": "x", "stamps_required": 5, "reward_text": "x",
                          "slug": "Not A Slug"}, "slug")):
        assert_clean_error(api.post(f"{V}/programs", json=body), 422, "validation_error", field=field)
    url = f"{V}/programs/{shop.stamps.id}"
    assert_clean_error(api.patch(url, json={"type": "points"}), 422, "validation_error", field="type")
    assert_clean_error(api.patch(url, json={"cooldown_minutes": 10**30}), 422, "validation_error",
                       field="cooldown_minutes")
    assert_clean_error(api.patch(url, json={"reward_text": ""}), 422, "validation_error", field="reward_text")


def test_deleting_a_used_pin_is_not_a_server_error(shop, stamps_url):
    assert shop.api.post(stamps_url, json={"staff_pin": "4321"}).status_code == 201
    response = shop.api.delete(f"{V}/pins/{shop.pin.id}")
    assert response.status_code == 204, response.get_json()
    # The PIN stops working, the ledger keeps who stamped, and the PIN can be given to someone else.
    assert shop.api.post(stamps_url, json={"staff_pin": "4321"}).get_json()["error"]["code"] == "pin_invalid"
    history = shop.api.get(stamps_url[:-len("/stamps")] + "/transactions").get_json()["transactions"]
    assert history[0]["staff_name"] == "Anna"
    assert shop.api.delete(f"{V}/pins/{shop.pin.id}").status_code == 404
    again = shop.api.post(f"{V}/pins", json={"program_id": shop.stamps.id, "staff_name": "Ben", "pin": "4321"})
    assert again.status_code == 201
