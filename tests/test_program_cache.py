"""The stamp path's copy of a program and its vendor (portal/services/program_cache.py): used while the
configuration's version, read with the card, is the one read with the copy; a change made anywhere else — another
process, hand-written SQL — raises the version in its own transaction and applies to the very next stamp.

The stamps go through the live server: each request there has a session of its own, as in production (the test
client shares the test's session, which already holds the program)."""
from __future__ import annotations

import pytest
import threading

import httpx
from sqlalchemy import create_engine, event, text

from portal.extensions import db

V = "/api/v1/vendor/loyalty"


@pytest.fixture
def elsewhere(app):
    """Another connection to the same database, as another process or an operator's psql would have."""
    db.session.rollback()  # the test's own session holds no snapshot or lock meanwhile
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])

    def run(sql, **params):
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return result.scalar() if result.returns_rows else None

    yield run
    engine.dispose()


@pytest.fixture
def stamp(shop, live_server):
    url = f"{live_server.url}{V}/cards/{shop.stamp_card.card_number}/stamps"

    def post():
        return httpx.post(url, json={"staff_pin": "4321"}, headers={"Authorization": f"Bearer {shop.key}"},
                          timeout=30)

    return post


def test_every_program_or_vendor_change_raises_the_version(factories, shop, elsewhere):
    unused = factories.program(shop.vendor)
    version = lambda: elsewhere("SELECT version FROM config_version WHERE id = 1")  # noqa: E731
    seen = [version()]
    elsewhere("UPDATE loyalty_programs SET cooldown_minutes = 3 WHERE id = :id", id=shop.stamps.id)
    seen.append(version())
    elsewhere("UPDATE vendors SET timezone = 'Europe/Paris' WHERE id = :id", id=shop.vendor.id)
    seen.append(version())
    elsewhere("DELETE FROM loyalty_programs WHERE id = :id", id=unused.id)
    seen.append(version())
    elsewhere("UPDATE loyalty_cards SET customer_name = 'Not configuration' WHERE id = :id", id=shop.stamp_card.id)
    seen.append(version())
    assert seen[1] > seen[0] and seen[2] > seen[1] and seen[3] > seen[2]
    assert seen[4] == seen[3]  # a card is not configuration


def test_a_change_made_elsewhere_applies_to_the_next_stamp(shop, elsewhere, stamp):
    assert stamp().status_code == 201  # the process now holds a copy of the program (cooldown 15 minutes)
    refused = stamp()
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "cooldown_active"
    elsewhere("UPDATE loyalty_programs SET cooldown_minutes = 0 WHERE id = :id", id=shop.stamps.id)
    again = stamp()
    assert again.status_code == 201, again.text
    assert again.json()["card"]["stamps"] == 2
    elsewhere("UPDATE vendors SET active = :no WHERE id = :id", no=False, id=shop.vendor.id)
    elsewhere("UPDATE vendors SET active = :yes WHERE id = :id", yes=True, id=shop.vendor.id)
    elsewhere("UPDATE loyalty_programs SET active = :no WHERE id = :id", no=False, id=shop.stamps.id)
    paused = stamp()
    assert paused.status_code == 409 and paused.json()["error"]["code"] == "program_inactive"


def test_the_copy_is_used_while_the_version_holds(shop, stamp):
    from portal.services import program_cache

    assert stamp().status_code == 201
    assert shop.stamps.id in program_cache._copies, "the first stamp kept no copy"
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() != test_thread:  # the server's, not this test's own
            statements.append(statement)

    test_thread = threading.get_ident()

    db.session.rollback()
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = stamp()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 429, response.text  # the cooldown of the copied program applies
    # The card's statement joins the programs table for the vendor check, but reads none of its columns.
    config_reads = [s for s in statements if "loyalty_programs.cooldown_minutes" in s or "vendors.timezone" in s]
    assert statements and config_reads == []


def test_without_the_version_row_no_copy_is_trusted_or_kept(shop, elsewhere, stamp):
    from portal.services import program_cache

    elsewhere("DELETE FROM config_version")  # e.g. a database restored without it
    try:
        program_cache.forget()
        assert stamp().status_code == 201
        assert program_cache._copies == {}
        elsewhere("UPDATE loyalty_programs SET cooldown_minutes = 0 WHERE id = :id", id=shop.stamps.id)
        assert stamp().status_code == 201  # read afresh: the new rule applies
    finally:
        elsewhere("INSERT INTO config_version (id, version) VALUES (1, 1)")
