"""The OpenAPI document (portal/api_spec/openapi.json) is valid, documents exactly the /api/v1 routes, and real
responses match its schemas, so the document cannot drift from the code unnoticed.

Adding a route under /api/v1 (e.g. the Apple Wallet web service under /api/v1/loyalty/apple/v1/…) makes
``test_every_route_is_documented`` fail with the list of routes to describe in the document.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from support import rewards_of

SPEC_PATH = Path(__file__).resolve().parent.parent / "portal" / "api_spec" / "openapi.json"
PREFIX = "/api/v1"
SPEC_URI = "urn:loyalty-openapi"
IGNORED_METHODS = {"HEAD", "OPTIONS"}
V = f"{PREFIX}/vendor/loyalty"


@pytest.fixture(scope="module")
def spec() -> dict:
    return json.loads(SPEC_PATH.read_text())


# --- the document itself --------------------------------------------------------------------------------------------

def test_document_is_valid_openapi(spec):
    assert spec["openapi"].startswith("3.")
    validate_spec(spec)  # raises with the offending path when the document is not valid OpenAPI


def test_served_document_is_the_file(client, spec):
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    served = response.get_json()
    assert served["servers"] == [{"url": "http://localhost/api/v1"}]
    served["servers"] = spec["servers"]
    assert served == spec


def rule_to_path(rule: str) -> str:
    """'/api/v1/vendor/loyalty/pins/<int(max=…):pin_id>' → '/vendor/loyalty/pins/{pin_id}' (relative to servers)."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>:]+)>", r"{\1}", rule[len(PREFIX):])


def api_routes(app) -> dict[tuple[str, str], object]:
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.rule == PREFIX or rule.rule.startswith(PREFIX + "/"):
            for method in sorted((rule.methods or set()) - IGNORED_METHODS):
                routes[(rule_to_path(rule.rule), method.lower())] = rule
    return routes


def documented_operations(spec) -> dict[tuple[str, str], dict]:
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    return {(path, method): op for path, item in spec["paths"].items() for method, op in item.items()
            if method in methods}


def test_every_route_is_documented(app, spec):
    undocumented = sorted(set(api_routes(app)) - set(documented_operations(spec)))
    assert not undocumented, (
        "These /api/v1 routes are not in portal/api_spec/openapi.json (paths are relative to the server URL "
        "/api/v1). Document each one (parameters, request body, every response with its schema):\n"
        + "\n".join(f"  {method.upper():6} {PREFIX}{path}" for path, method in undocumented))


def test_every_documented_operation_exists(app, spec):
    missing = sorted(set(documented_operations(spec)) - set(api_routes(app)))
    assert not missing, ("portal/api_spec/openapi.json documents operations that no route serves:\n"
                         + "\n".join(f"  {method.upper():6} {PREFIX}{path}" for path, method in missing))


def resolve(spec, node: dict) -> dict:
    while "$ref" in node:
        assert node["$ref"].startswith("#/"), node["$ref"]
        target = spec
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def operation_parameters(spec, path: str, op: dict) -> list[dict]:
    item = spec["paths"][path]
    return [resolve(spec, p) for p in item.get("parameters", []) + op.get("parameters", [])]


def is_balance_change(view) -> bool:
    code = getattr(view, "__code__", None)
    return code is not None and code.co_qualname == "balance_change.<locals>.wrapper"


APPLE_PREFIX = "/loyalty/apple/"


def test_operations_follow_the_conventions(app, spec):
    """Path parameters match the rule (ints are integers, card numbers are 10 digits), security per group,
    Idempotency-Key exactly on balance-changing POSTs, JSON error envelopes, Retry-After on 429."""
    routes = api_routes(app)
    problems = []
    for (path, method), op in documented_operations(spec).items():
        where = f"{method.upper()} {path}"
        rule = routes.get((path, method))
        if rule is None:
            continue  # reported by test_every_documented_operation_exists
        params = operation_parameters(spec, path, op)
        path_params = {p["name"]: p for p in params if p["in"] == "path"}
        if set(path_params) != set(rule.arguments):
            problems.append(f"{where}: path parameters {sorted(path_params)} != rule's {sorted(rule.arguments)}")
        for name, converter in rule._converters.items():
            schema = resolve(spec, path_params.get(name, {}).get("schema", {}))
            want = "integer" if type(converter).__name__ == "IntegerConverter" else "string"
            if schema.get("type") != want:
                problems.append(f"{where}: path parameter {name} should be of type {want}")
            if name == "card_number" and schema.get("pattern") != "^[0-9]{10}$":
                problems.append(f"{where}: card_number should be documented as 10 digits")
        security = op.get("security", spec.get("security"))
        expected = ([{"vendorApiKey": []}] if path.startswith("/vendor/") else
                    [{"adminApiKey": []}] if path.startswith("/admin/") else [])
        if security != expected:
            problems.append(f"{where}: security should be {expected}, is {security}")
        view = app.view_functions[rule.endpoint]
        has_key = any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in params)
        if has_key != (method == "post" and is_balance_change(view)):
            problems.append(f"{where}: the Idempotency-Key header must be documented on exactly the "
                            "@balance_change POSTs")
        if expected and not {"401", "403"} <= set(op["responses"]):
            problems.append(f"{where}: an authenticated operation documents 401 and 403")
        for status, response in op["responses"].items():
            response = resolve(spec, response)
            if status == "204":
                continue
            if path.startswith(APPLE_PREFIX) and status in ("200", "201", "304"):
                continue  # Apple's PassKit web service defines these bodies (empty, or a .pkpass), not us
            if "application/json" not in response.get("content", {}):
                problems.append(f"{where}: response {status} is not documented as application/json")
                continue
            schema = resolve(spec, response["content"]["application/json"]["schema"])
            if status.startswith(("4", "5")) and "error" not in schema.get("properties", {}):
                problems.append(f"{where}: response {status} is not the error envelope")
            if status in ("423", "429") and "Retry-After" not in response.get("headers", {}):
                problems.append(f"{where}: response {status} documents no Retry-After header")
    assert not problems, "\n".join(problems)


# --- real responses against the schemas ----------------------------------------------------------------------------

class SpecChecker:
    """Validates a Flask test response against the documented response for its path, method and status."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.registry = Registry().with_resource(SPEC_URI, Resource.from_contents(
            spec, default_specification=DRAFT202012))
        self.templates = [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"), p)
                          for p in spec["paths"]]

    def template(self, url_path: str) -> str:
        path = url_path[len(PREFIX):]
        matches = [t for regex, t in self.templates if regex.match(path)]
        assert matches, f"{url_path} matches no documented path"
        return min(matches, key=lambda t: t.count("{"))  # the most specific template

    def __call__(self, response, method: str, url_path: str, status: int | None = None):
        url_path = url_path.split("?")[0]
        if status is not None:
            assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
        template = self.template(url_path)
        op = self.spec["paths"][template][method.lower()]
        code = str(response.status_code)
        assert code in op["responses"], f"{method} {template}: status {code} is not documented"
        documented = resolve(self.spec, op["responses"][code])
        for name, header in documented.get("headers", {}).items():
            if header.get("required"):
                assert name in response.headers, f"{method} {template} {code}: header {name} missing"
        if code == "204":
            assert response.get_data() == b""
            return None
        assert response.mimetype == "application/json", response.mimetype
        pointer = "/".join(["#", "paths", template.replace("~", "~0").replace("/", "~1"), method.lower(),
                            "responses", code])
        if "$ref" in op["responses"][code]:
            pointer = op["responses"][code]["$ref"]
        pointer += "/content/application~1json/schema"
        validator = Draft202012Validator({"$ref": SPEC_URI + pointer}, registry=self.registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        body = response.get_json()
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{method} {template} {code}: the body does not match the documented schema:\n" + \
            "\n".join(f"  at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors[:10])
        return body


@pytest.fixture
def check(spec):
    return SpecChecker(spec)


def test_stamp_success_matches(shop, check):
    url = f"{V}/cards/{shop.stamp_card.card_number}/stamps"
    body = check(shop.api.post(url, json={"staff_pin": "4321", "count": 2, "note": "Café ☕"}), "POST", url, 201)
    assert body["card"]["stamps"] == 2 and body["transaction"]["type"] == "stamp_add"


def test_cooldown_matches_with_retry_after(shop, check):
    url = f"{V}/cards/{shop.stamp_card.card_number}/stamps"
    check(shop.api.post(url, json={"staff_pin": "4321"}), "POST", url, 201)
    response = shop.api.post(url, json={"staff_pin": "4321"})
    body = check(response, "POST", url, 429)
    assert body["error"]["code"] == "cooldown_active"
    assert int(response.headers["Retry-After"]) == body["error"]["retry_after"] > 0
    assert body["error"]["available_at"]


def test_not_found_matches(shop, check, client):
    number = shop.stamp_card.card_number
    other = number[:-2] + next(d for d in "0123456789" if d != number[-2])
    other = other + _luhn(other)
    url = f"{V}/cards/{other}"
    assert check(shop.api.get(url), "GET", url, 404)["error"]["code"] == "not_found"
    url = f"{V}/programs/999999"
    assert check(shop.api.get(url), "GET", url, 404)["error"]["code"] == "not_found"
    url = f"{PREFIX}/loyalty/programs/no-such-program"
    assert check(client.get(url), "GET", url, 404)["error"]["code"] == "not_found"


def test_validation_error_with_fields_matches(shop, check):
    url = f"{V}/cards/{shop.stamp_card.card_number}/stamps"
    body = check(shop.api.post(url, json={"count": 0, "staff_pin_id": "x", "note": "a" * 501}), "POST", url, 422)
    assert body["error"]["code"] == "validation_error"
    assert set(body["error"]["fields"]) == {"count", "staff_pin_id", "note"}
    url = f"{V}/programs"
    body = check(shop.api.post(url, json={"type": "points", "name": "P", "points_per_unit": "abc",
                                          "rewards": [{"name": "", "points_cost": 0}]}), "POST", url, 422)
    assert {"points_per_unit", "rewards.0.name", "rewards.0.points_cost"} <= set(body["error"]["fields"])


def _luhn(body: str) -> str:
    from portal.services.cards import luhn_check_digit

    return luhn_check_digit(body)


def test_a_card_number_in_the_path_that_names_no_card_is_404_whatever_its_shape(shop, check):
    number = shop.stamp_card.card_number
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    for bad in (typo, "ACC-NO-SUCH-1", "123"):
        url = f"{V}/cards/{bad}"
        assert check(shop.api.get(url), "GET", url, 404)["error"]["code"] == "not_found"
        url = f"{V}/cards/{bad}/stamps"
        assert check(shop.api.post(url, json={"staff_pin": "4321"}), "POST", url, 404)["error"]["code"] == "not_found"
    # A malformed body is still a 422, whatever the card.
    url = f"{V}/cards/{number}/stamps"
    assert check(shop.api.post(url, json={"count": 0, "staff_pin": "4321"}), "POST", url, 422)["error"]["fields"]


def test_auth_errors_match(shop, factories, check, make_api):
    url = f"{V}/programs"
    assert check(make_api(None).get(url), "GET", url, 401)["error"]["code"] == "unauthorized"
    assert check(make_api("lk_wrong").get(url), "GET", url, 401)["error"]["code"] == "unauthorized"
    admin = make_api(factories.api_key(None))
    assert check(admin.get(url), "GET", url, 403)["error"]["code"] == "forbidden"
    url = f"{PREFIX}/admin/loyalty/stats"
    assert check(shop.api.get(url), "GET", url, 403)["error"]["code"] == "forbidden"


def test_a_tour_of_every_operation_matches(shop, factories, check, client, make_api):
    """One realistic call (or more) per documented operation, each response checked against the document."""
    api, stamp, points = shop.api, shop.stamp_card.card_number, shop.points_card.card_number
    # programs
    url = f"{V}/programs"
    assert len(check(api.get(url), "GET", url, 200)["programs"]) == 2
    created = check(api.post(url, json={"type": "stamps", "name": "Tea card", "stamps_required": 8,
                                        "reward_text": "A free tea", "require_pin": False, "cooldown_minutes": 0,
                                        "daily_stamp_limit": 0, "background_color": "#AABBCC"}), "POST", url, 201)
    url = f"{V}/programs/{created['id']}"
    check(api.get(url), "GET", url, 200)
    patched = check(api.patch(url, json={"description": "Tea", "stamps_required": 2}), "PATCH", url, 200)
    assert patched["stamps_required"] == 2 and patched["colors"]["background"] == "#aabbcc"
    url = f"{V}/programs/{shop.points.id}"
    check(api.patch(url, json={"points_per_unit": "2.50", "currency": "usd"}), "PATCH", url, 200)
    # cards
    url = f"{V}/cards"
    card = check(api.post(url, json={"program_id": created["id"], "name": "Zoë", "phone": "621 123 456",
                                     "locale": "fr-LU"}), "POST", url, 201)
    assert card["customer"] == {"name": "Zoë", "email": None, "phone": "+352621123456", "locale": "fr"}
    check(api.post(url, json={"program_id": created["id"], "phone": "+352 621 123 456"}), "POST", url, 200)
    check(api.get(url + "?q=zo&limit=5"), "GET", url, 200)
    check(api.get(url + f"?program_id={shop.stamps.id}&offset=0"), "GET", url, 200)
    url = f"{V}/cards/{stamp}"
    check(api.get(url), "GET", url, 200)
    # ledger: stamps (free program: no PIN), redeem, points, adjustments, void
    tea = card["card_number"]
    url = f"{V}/cards/{tea}/stamps"
    check(api.post(url, json={"count": 2}), "POST", url, 201)
    url = f"{V}/cards/{tea}/stamps/redeem"
    redeemed = check(api.post(url, json={}), "POST", url, 201)
    assert redeemed["transaction"]["type"] == "stamp_redeem" and redeemed["card"]["stamps"] == 0
    check(api.post(url, json={}), "POST", url, 409)
    url = f"{V}/cards/{points}/points"
    earned = check(api.post(url, json={"amount": "12.50", "staff_pin": "4321"}, headers={"Idempotency-Key": "a-1"}),
                   "POST", url, 201)
    assert earned["transaction"]["amount"] == "12.50" and earned["card"]["points"] == 31
    replay = api.post(url, json={"amount": "12.50", "staff_pin": "4321"}, headers={"Idempotency-Key": "a-1"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert check(replay, "POST", url, 201) == earned
    reused = api.post(url, json={"points": 5, "staff_pin": "4321"}, headers={"Idempotency-Key": "a-1"})
    assert check(reused, "POST", url, 422)["error"]["code"] == "idempotency_key_reused"
    check(api.post(url, json={"points": 100, "staff_pin": "4321"}), "POST", url, 201)
    url = f"{V}/cards/{points}/points/redeem"
    reward = rewards_of(shop.points)[0]
    check(api.post(url, json={"reward_id": reward.id, "staff_pin": "4321"}), "POST", url, 201)
    check(api.post(url, json={"reward_id": 999999, "staff_pin": "4321"}), "POST", url, 422)
    url = f"{V}/cards/{points}/adjustments"
    adjusted = check(api.post(url, json={"delta": -1, "reason": "Typo"}), "POST", url, 201)
    check(api.post(url, json={"delta": -10**6, "reason": "Too much"}), "POST", url, 409)
    url = f"{V}/transactions/{adjusted['transaction']['id']}/void"
    voided = check(api.post(url, json={"reason": "Wrong adjustment"}), "POST", url, 201)
    assert voided["transaction"]["voided_transaction_id"] == adjusted["transaction"]["id"]
    assert check(api.post(url, json={"reason": "Again"}), "POST", url, 409)["error"]["code"] == "conflict"
    url = f"{V}/cards/{points}/transactions"
    history = check(api.get(url + "?limit=3"), "GET", url, 200)
    assert len(history["transactions"]) == 3
    check(api.get(url + f"?before_id={history['transactions'][-1]['id']}"), "GET", url, 200)
    # PINs: required, wrong (attempts left), locked (423 with Retry-After), unlocked
    url = f"{V}/cards/{stamp}/stamps"
    assert check(api.post(url, json={}), "POST", url, 403)["error"]["code"] == "pin_required"
    wrong = check(api.post(url, json={"staff_pin": "0000"}), "POST", url, 403)
    assert wrong["error"]["code"] == "pin_invalid" and wrong["error"]["attempts_left"] == 4
    for _ in range(4):
        last = api.post(url, json={"staff_pin": "0000"})
    assert check(last, "POST", url, 403)["error"]["attempts_left"] == 0
    locked = api.post(url, json={"staff_pin": "4321"})
    assert check(locked, "POST", url, 423)["error"]["code"] == "pin_locked"
    assert int(locked.headers["Retry-After"]) > 0
    url = f"{V}/pins/{shop.pin.id}/unlock"
    check(api.post(url), "POST", url, 200)
    url = f"{V}/pins"
    check(api.get(url), "GET", url, 200)
    check(api.get(url + f"?program_id={shop.stamps.id}"), "GET", url, 200)
    new_pin = check(api.post(url, json={"program_id": shop.stamps.id, "staff_name": "Ben"}), "POST", url, 201)
    assert re.fullmatch(r"\d{4,8}", new_pin["pin"])
    check(api.post(url, json={"program_id": shop.stamps.id, "staff_name": "Cleo", "pin": "4321"}), "POST", url, 422)
    url = f"{V}/pins/{new_pin['id']}"
    check(api.delete(url), "DELETE", url, 204)
    check(api.delete(url), "DELETE", url, 404)
    # stats
    url = f"{V}/stats"
    stats = check(api.get(url + "?days=7"), "GET", url, 200)
    assert len(stats["daily"]["days"]) == 7 and stats["refusals"]["pin_invalid"] == 5
    check(api.get(url + f"?program_id={shop.points.id}"), "GET", url, 200)
    check(api.get(url + "?program_id=999999"), "GET", url, 404)
    check(api.get(url + "?days=abc"), "GET", url, 400)
    # admin
    admin = make_api(factories.api_key(None))
    url = f"{PREFIX}/admin/loyalty/programs"
    listed = check(admin.get(url + "?per_page=2&page=1"), "GET", url, 200)
    assert listed["total"] == 3 and len(listed["programs"]) == 2
    url = f"{PREFIX}/admin/loyalty/stats"
    check(admin.get(url), "GET", url, 200)
    # public
    url = f"{PREFIX}/loyalty/programs/{shop.points.slug}"
    public = check(client.get(url), "GET", url, 200)
    assert "require_pin" not in public
    url = f"{PREFIX}/loyalty/programs/{shop.stamps.slug}/enroll"
    enrolled = check(client.post(url, json={"name": "Ana", "email": "Ana@Example.com", "locale": "lb",
                                             "consent": True}), "POST",
                     url, 201)
    assert {"card_url", "pkpass_url", "google_save_url"} <= set(enrolled) and "customer" not in enrolled
    assert check(client.post(url, json={"email": "ana@example.com", "consent": True}), "POST", url,
                 202) == {"status": "link_sent"}
    check(client.post(url, json={"name": "Ana", "email": "new@example.com"}), "POST", url, 422)  # no consent
    check(client.post(url, json={"name": "No contact"}), "POST", url, 422)
    # a paused program
    url = f"{V}/programs/{created['id']}"
    check(api.patch(url, json={"active": False}), "PATCH", url, 200)
    url = f"{V}/cards/{tea}/stamps"
    assert check(api.post(url, json={}), "POST", url, 409)["error"]["code"] == "program_inactive"


def test_a_replayed_refusal_keeps_its_retry_after(shop, check):
    url = f"{V}/cards/{shop.stamp_card.card_number}/stamps"
    check(shop.api.post(url, json={"staff_pin": "4321"}), "POST", url, 201)
    first = shop.api.post(url, json={"staff_pin": "4321"}, headers={"Idempotency-Key": "k-429"})
    again = shop.api.post(url, json={"staff_pin": "4321"}, headers={"Idempotency-Key": "k-429"})
    assert check(first, "POST", url, 429) == check(again, "POST", url, 429)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Retry-After"] == first.headers["Retry-After"]


class TestEnrolmentRateLimit:
    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_ENABLED": True, "ENROLL_RATE_LIMIT": "2 per hour"}

    def test_rate_limited_enrolment_matches(self, shop, client, check):
        url = f"{PREFIX}/loyalty/programs/{shop.stamps.slug}/enroll"
        for i in range(2):
            check(client.post(url, json={"email": f"rate{i}@example.com", "consent": True}), "POST", url, 201)
        response = client.post(url, json={"email": "rate3@example.com", "consent": True})
        body = check(response, "POST", url, 429)
        assert body["error"]["code"] == "rate_limited"
        assert int(response.headers["Retry-After"]) > 0


def test_replace_merge_and_card_replaced_match(shop, factories, check):
    card, other = shop.stamp_card, factories.card(shop.stamps)
    old = card.card_number
    url = f"{V}/cards/{old}/replace"
    body = check(shop.api.post(url, json={"reason": "Phone lost"}), "POST", url, 201)
    assert body["replaced_card_number"] == old and body["card"]["card_number"] != old
    for method, url in (("GET", f"{V}/cards/{old}"), ("POST", f"{V}/cards/{old}/stamps")):
        response = shop.api.client.open(url, method=method, json={"staff_pin": "4321"},
                                        headers={"Authorization": f"Bearer {shop.key}"})
        assert check(response, method, url, 410)["error"]["code"] == "card_replaced"
    url = f"{V}/cards/{body['card']['card_number']}/merge"
    merged = check(shop.api.post(url, json={"into": other.card_number}), "POST", url, 200)
    assert merged["card"]["card_number"] == other.card_number and merged["transactions"] == []
    assert check(shop.api.post(url, json={"into": other.card_number}), "POST", url, 410)


def test_wallet_health_and_relevance_match(shop, check):
    """Issue 16: pass health (per card, per shop) and a program's locations and offer dates."""
    api = shop.api
    url = f"{V}/cards/{shop.stamp_card.card_number}/wallet-health"
    health = check(api.get(url), "GET", url, 200)
    assert health["apple"]["devices"] == 0 and health["google"]["state"] is None
    url = f"{V}/wallet-health"
    check(api.get(url), "GET", url, 200)
    check(api.get(url + f"?program_id={shop.points.id}"), "GET", url, 200)
    check(api.get(url + "?program_id=999999"), "GET", url, 404)
    url = f"{V}/programs/{shop.stamps.id}/relevance"
    assert check(api.get(url), "GET", url, 200)["locations"] == []
    saved = check(api.put(url, json={"locations": [{"latitude": 49.61, "longitude": 6.13, "relevant_text": "Here"}],
                                     "relevant_from": "2026-12-01T08:00", "relevant_until": "2026-12-02T08:00"}),
                  "PUT", url, 200)
    assert saved["relevant_until"] == "2026-12-02T07:00:00+00:00"
    check(api.put(url, json={"locations": [{"latitude": 100, "longitude": 6}]}), "PUT", url, 422)
    check(api.client.put(url, data="x", content_type="text/plain", headers=api._headers(None)), "PUT", url, 400)


def test_google_callback_refusals_match(app, client, check):
    url = f"{PREFIX}/loyalty/google/callback"
    check(client.post(url, data=b"{}", content_type="application/json"), "POST", url, 404)  # not configured
    app.config.update(GOOGLE_WALLET_ISSUER_ID="3388000000022999111", GOOGLE_SERVICE_ACCOUNT_FILE="/nonexistent")
    body = check(client.post(url, data=b"{}", content_type="application/json"), "POST", url, 400)
    assert body["error"]["code"] == "callback_malformed"
