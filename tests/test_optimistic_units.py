"""SQLite's optimistic units of work (portal/db.py ``optimistic_unit``): a stamp reads its card, program and rules
without the database's write lock, then takes the lock and writes only if what it read still holds; otherwise it
runs again holding the lock from the start. Each test changes the database from another thread at the moment
between the read and the write, which is where a lost update would happen."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, select, text

from portal.db import run_in_transaction
from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyTransaction
from portal.services import ledger, operations
from portal.services.actor import Actor
from tests.conftest import IS_PG

pytestmark = pytest.mark.skipif(IS_PG, reason="optimistic units are SQLite's (PostgreSQL locks the card's row)")

V = "/api/v1/vendor/loyalty"


def in_other_thread(app, fn):
    """Run ``fn`` as a unit of work of its own, on another connection, and wait for its commit."""
    outcome = {}

    def run():
        with app.app_context():
            try:
                outcome["value"] = run_in_transaction(fn)
            except Exception as exc:  # noqa: BLE001 - handed to the test
                outcome["error"] = exc
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the other writer was blocked: the request held the write lock while reading"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@pytest.fixture
def between_read_and_write(monkeypatch):
    """``install(fn)``: run ``fn`` once, when the first balance change has read everything and is about to take
    the write lock."""
    calls = []

    def install(fn):
        original = ledger.lock_for_write

        def hooked(connection):
            if not calls:
                calls.append(True)
                fn()
            return original(connection)

        monkeypatch.setattr(ledger, "lock_for_write", hooked)
        return calls

    return install


@pytest.fixture
def stamp_shop(factories, make_api):
    vendor = factories.vendor()
    program = factories.program(vendor, cooldown_minutes=15)
    card = factories.card(program)
    key = factories.api_key(vendor)
    return vendor, program, card, make_api(key)


def _stamp_elsewhere(app, vendor, number):
    actor = Actor(vendor_id=vendor.id, role="api", name="other till")
    in_other_thread(app, lambda: operations.add_stamps(actor, number, {"count": 1}))


def _ledger(card_id):
    db.session.rollback()
    return db.session.scalars(select(LoyaltyTransaction).where(LoyaltyTransaction.card_id == card_id)).all()


def test_a_stamp_given_elsewhere_between_read_and_write_is_seen(app, stamp_shop, between_read_and_write, runner):
    vendor, program, card, api = stamp_shop
    calls = between_read_and_write(lambda: _stamp_elsewhere(app, vendor, card.card_number))
    response = api.post(f"{V}/cards/{card.card_number}/stamps", json={"count": 1})
    assert calls, "the stamp did not go through lock_for_write"
    # The request read a card without stamps (allowed), but the other till's stamp committed before it could
    # write: it ran again under the lock and met the cooldown that stamp started.
    assert response.status_code == 429, response.json
    assert response.json["error"]["code"] == "cooldown_active"
    assert [tx.delta for tx in _ledger(card.id)] == [1]
    assert db.session.get(LoyaltyCard, card.id).stamps == 1
    result = runner.invoke(args=["loyalty", "verify-ledger", "--json"])
    assert result.exit_code == 0 and '"ok": true' in result.output


def test_without_a_race_the_card_is_read_without_the_lock_and_written_with_it(app, stamp_shop):
    vendor, program, card, api = stamp_shop
    number, card_id = card.card_number, card.id  # (the test's own reads, before watching)
    seen = []

    def watch(conn, cursor, statement, params, context, executemany):
        queued = bool(getattr(conn.connection.dbapi_connection, "_queued", False))
        seen.append((statement.split()[0].upper(), "loyalty_cards" in statement, queued))

    event.listen(db.engine, "before_cursor_execute", watch)
    try:
        response = api.post(f"{V}/cards/{number}/stamps", json={"count": 1})
    finally:
        event.remove(db.engine, "before_cursor_execute", watch)
    assert response.status_code == 201, response.json
    card_reads = [queued for verb, cards, queued in seen if verb == "SELECT" and cards]
    card_writes = [queued for verb, cards, queued in seen if verb == "UPDATE" and cards]
    assert card_reads == [False]  # read while other writers may go on
    assert card_writes == [True]  # written holding the lock, once
    assert [verb for verb, _, queued in seen if queued][0] == "UPDATE"  # the first statement with the lock
    assert [tx.delta for tx in _ledger(card_id)] == [1]


def test_a_program_paused_between_read_and_write_refuses_the_stamp(app, stamp_shop, between_read_and_write):
    vendor, program, card, api = stamp_shop

    def pause():
        with db.engine.begin() as conn:  # any path: here hand-written SQL on another connection
            conn.execute(text("UPDATE loyalty_programs SET active = 0 WHERE id = :id"), {"id": program.id})

    between_read_and_write(pause)
    response = api.post(f"{V}/cards/{card.card_number}/stamps", json={"count": 1})
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "program_inactive"
    assert _ledger(card.id) == []


def test_a_write_in_the_read_phase_after_another_commit_runs_the_unit_again(app, stamp_shop, monkeypatch):
    """A refusal's trace is written without lock_for_write: SQLite takes the lock itself, and refuses it when
    another connection committed since the read (SQLITE_BUSY_SNAPSHOT). The unit runs again and the trace is
    written once."""
    vendor, program, card, api = stamp_shop
    assert api.post(f"{V}/cards/{card.card_number}/stamps", json={"count": 1}).status_code == 201
    other_card = []
    original = operations.record_refusal

    def hooked(*args, **kwargs):
        if not other_card:  # another shop's till enrols a customer meanwhile
            other_card.append(in_other_thread(app, lambda: _enrol_elsewhere(program)))
        return original(*args, **kwargs)

    monkeypatch.setattr(operations, "record_refusal", hooked)
    response = api.post(f"{V}/cards/{card.card_number}/stamps", json={"count": 1})
    assert other_card
    assert response.status_code == 429 and response.json["error"]["code"] == "cooldown_active"
    db.session.rollback()
    refusals = db.session.execute(text("SELECT code FROM loyalty_refusals WHERE card_id = :id"),
                                  {"id": card.id}).scalars().all()
    assert refusals == ["cooldown_active"]


def _enrol_elsewhere(program):
    from portal.services import cards

    card, _ = cards.enroll(db.session.merge(program), {"name": "Someone else", "email": "else@example.com"})
    return card.id
