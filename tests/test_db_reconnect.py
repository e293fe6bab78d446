"""No pool pre-ping (it cost a round trip on every request): a pooled connection that the database dropped is
found dead by the request's first statement, discarded with the rest of the pool, and the request runs again on a
fresh connection — the client never sees it."""
from __future__ import annotations


import pytest
from support import IS_PG
from sqlalchemy import create_engine, text


pytestmark = pytest.mark.skipif(not IS_PG, reason="PostgreSQL: the server can drop the app's connections")


def _drop_app_connections(app) -> int:
    admin = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(text("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()) t")).scalar()
    admin.dispose()
    return killed


def test_requests_survive_dropped_connections(app, shop, client):
    card, token = shop.stamp_card.card_number, shop.stamp_card.public_token
    path = f"/api/v1/vendor/loyalty/cards/{card}/stamps"
    assert shop.api.get(f"/api/v1/vendor/loyalty/cards/{card}").status_code == 200
    from portal.extensions import db

    db.session.remove()  # the test's own session gives its connection back to the pool too
    assert _drop_app_connections(app) >= 1
    # A write whose first statement (the API key look-up, in before_request) meets the dead connection.
    response = shop.api.post(path, json={"staff_pin": "4321"})
    assert response.status_code == 201, response.json
    assert response.json["card"]["stamps"] == 1
    db.session.remove()
    assert _drop_app_connections(app) >= 1
    # A page whose first statement is in the view (no API key): the unit of work is run again.
    assert client.get(f"/c/{token}").status_code == 200
    db.session.remove()
    assert _drop_app_connections(app) >= 1
    assert shop.api.get(f"/api/v1/vendor/loyalty/cards/{card}").status_code == 200
