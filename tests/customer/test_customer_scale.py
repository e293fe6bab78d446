"""The "which passes changed" query stays an indexed join with 200 000 device registrations."""
from __future__ import annotations

import secrets
import time

import pytest
from sqlalchemy import insert, text

from portal.extensions import db
from portal.models import AppleDeviceRegistration
from portal.services import clock

from .conftest import PUSH_TOKENS

pytestmark = pytest.mark.timeout(180)
PTID = "pass.lu.example.loyalty"
A = "/api/v1/loyalty/apple/v1"


@pytest.fixture
def app_config(wallet_app_config):
    return wallet_app_config


def test_updated_serials_with_200k_registrations(client, shop, factories):
    cards = [shop.stamp_card, shop.points_card] + [factories.card(shop.stamps) for _ in range(3)]
    now = clock.now()
    rows = [{"device_library_id": f"device-{i // 10}", "push_token": PUSH_TOKENS[i % 4], "pass_type_id": PTID,
             "serial_number": secrets.token_hex(16), "created_at": now} for i in range(200_000)]
    rows += [{"device_library_id": "my-phone", "push_token": PUSH_TOKENS[0], "pass_type_id": PTID,
              "serial_number": c.apple_serial, "created_at": now} for c in cards]
    for start in range(0, len(rows), 20_000):
        db.session.execute(insert(AppleDeviceRegistration), rows[start:start + 20_000])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE apple_device_registrations"))
        db.session.commit()

    started = time.perf_counter()
    for _ in range(20):
        r = client.get(f"{A}/devices/my-phone/registrations/{PTID}")
        assert r.status_code == 200
    per_request = (time.perf_counter() - started) / 20
    assert sorted(r.json["serialNumbers"]) == sorted(c.apple_serial for c in cards)
    assert per_request < 0.1, f"{per_request * 1000:.1f} ms per listing"

    # The plan looks registrations up by (device, pass type) through the unique index, never scans them.
    from portal.services.wallet import apple_service

    stmt_sql = str(_compiled_listing(apple_service))
    if db.engine.dialect.name == "sqlite":
        plan = " | ".join(str(row[-1]) for row in db.session.execute(text("EXPLAIN QUERY PLAN " + stmt_sql)))
        assert "SEARCH apple_device_registrations USING COVERING INDEX" in plan, plan
        assert "(device_library_id=? AND pass_type_id=?)" in plan, plan
        assert "SEARCH loyalty_cards USING INDEX" in plan, plan
        assert "SCAN apple_device_registrations" not in plan, plan
    else:
        plan = " | ".join(row[0] for row in db.session.execute(text("EXPLAIN " + stmt_sql)))
        assert "Seq Scan on apple_device_registrations" not in plan, plan


def _compiled_listing(apple_service):
    """The listing query with literal parameters, captured from the service."""
    from sqlalchemy import event

    captured = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "apple_device_registrations" in statement and "JOIN" in statement.upper():
            captured.append(context.compiled)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        apple_service.updated_serials("my-phone", PTID, None)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    db.session.rollback()
    compiled = captured[0]
    return compiled.statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
