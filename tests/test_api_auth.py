"""API keys are authenticated before the view, on every request, by one indexed look-up: nothing is cached, so a
key revoked or deleted, or a vendor suspended — by any path, hand-written SQL on another connection included —
is refused from the next request on, and a refused request runs no view."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, text

from portal.extensions import db


@pytest.fixture
def statements(app):
    seen = []

    def record(conn, cursor, statement, params, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(db.engine, "before_cursor_execute", record)


def _key_lookups(statements):
    return [s for s in statements if "FROM api_keys" in s]


def _commit_elsewhere(app, sql, params):
    """Hand-written SQL committed on another connection: no app code involved."""
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with other.begin() as conn:
        conn.execute(text(sql), params)
    other.dispose()


def _programs(shop):
    return shop.api.get("/api/v1/vendor/loyalty/programs")


def test_every_request_looks_its_key_up_once_before_its_view(shop, statements):
    card = shop.points_card.card_number
    for _ in range(2):
        db.session.rollback()
        statements.clear()
        assert shop.api.post(f"/api/v1/vendor/loyalty/cards/{card}/points",
                             json={"points": 3, "staff_pin": "4321"}).status_code == 201
        queries = [s for s in statements if not s.startswith(("BEGIN", "COMMIT", "ROLLBACK"))]
        assert "FROM api_keys" in queries[0], queries[0]
        assert len(_key_lookups(statements)) == 1


@pytest.mark.parametrize("change, status, code", [
    ("UPDATE vendors SET active = :no WHERE id = :vendor", 403, "vendor_suspended"),
    ("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE vendor_id = :vendor", 401, "unauthorized"),
    ("DELETE FROM api_keys WHERE vendor_id = :vendor", 401, "unauthorized"),
])
def test_a_change_made_by_another_connection_applies_to_the_next_request(app, shop, change, status, code):
    vendor_id = shop.vendor.id
    assert _programs(shop).status_code == 200
    db.session.rollback()  # the test's session is the requests' (one app context): hold no snapshot
    params = {"vendor": vendor_id, "no": False} if ":no" in change else {"vendor": vendor_id}
    _commit_elsewhere(app, change, params)
    response = _programs(shop)
    assert response.status_code == status and response.json["error"]["code"] == code


def test_a_revoked_key_runs_no_view_and_writes_nothing(app, shop, statements):
    card, vendor_id = shop.stamp_card.card_number, shop.vendor.id
    db.session.rollback()  # the test's session is the requests' (one app context): hold no snapshot
    _commit_elsewhere(app, "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE vendor_id = :v",
                      {"v": vendor_id})
    statements.clear()
    response = shop.api.post(f"/api/v1/vendor/loyalty/cards/{card}/stamps", json={"staff_pin": "4321"},
                             headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 401, response.json
    assert not [s for s in statements if "loyalty_cards" in s or "idempotency_keys" in s]
    db.session.rollback()
    assert db.session.execute(text("SELECT count(*) FROM loyalty_transactions")).scalar() == 0


def test_a_renamed_key_is_used_with_its_new_name(app, shop):
    card, vendor_id = shop.points_card.card_number, shop.vendor.id
    assert _programs(shop).status_code == 200
    db.session.rollback()
    _commit_elsewhere(app, "UPDATE api_keys SET name = 'Till 2' WHERE vendor_id = :v", {"v": vendor_id})
    response = shop.api.post(f"/api/v1/vendor/loyalty/cards/{card}/points", json={"points": 2})
    assert response.status_code == 201, response.json
    db.session.rollback()
    assert db.session.execute(text("SELECT staff_name FROM loyalty_transactions")).scalars().all() == ["Till 2"]
