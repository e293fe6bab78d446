"""The storage seam's guarantees (portal/storage/): a writer that cannot get SQLite's write lock in time gets
``503 busy`` with ``Retry-After`` and changes nothing; a balance change waits for the card another transaction
holds; long read-only work never holds the write lock; the ledger's
statements leave every column they do not set to its default; a stamp costs a known number of SQL statements."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, event, select, text

from portal.extensions import db
from portal.models import WalletOutbox

from support import IS_PG, csrf_from, field_value

sqlite_only = pytest.mark.skipif(IS_PG, reason="SQLite's one database-wide write lock")
V = "/api/v1/vendor/loyalty"


class Holder:
    """Another connection that holds what a stamp needs: SQLite's write lock, or the card's row lock."""

    def __init__(self, app, card_id):
        self.app, self.card_id = app, card_id

    def __enter__(self):
        url = self.app.config["SQLALCHEMY_DATABASE_URI"]
        if IS_PG:
            self.engine = create_engine(url)
            self.conn = self.engine.connect()
            self.conn.execute(text("SELECT id FROM loyalty_cards WHERE id = :id FOR UPDATE"), {"id": self.card_id})
        else:
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
            self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc):
        if IS_PG:
            self.conn.rollback()
            self.conn.close()
            self.engine.dispose()
        else:
            self.conn.execute("ROLLBACK")
            self.conn.close()


def _count(sql):
    db.session.rollback()
    return db.session.execute(text(sql)).scalar()


def _assert_documented_busy(body: dict) -> None:
    """The answer is the one openapi.json documents for the stamp route's 503."""
    import json
    from pathlib import Path

    from jsonschema import Draft202012Validator

    spec = json.loads((Path(__file__).resolve().parent.parent / "portal/api_spec/openapi.json").read_text())
    operation = spec["paths"]["/vendor/loyalty/cards/{card_number}/stamps"]["post"]
    assert operation["responses"]["503"] == {"$ref": "#/components/responses/Busy"}
    schema = spec["components"]["responses"]["Busy"]["content"]["application/json"]["schema"]
    Draft202012Validator(schema).validate(body)


@sqlite_only
@pytest.mark.parametrize("app_config", [{"SQLITE_BUSY_TIMEOUT": 0.3}], indirect=True)
def test_sqlite_a_writer_that_waits_longer_than_the_busy_timeout_gets_503_busy(app, shop, client):
    card = shop.stamp_card.card_number
    db.session.rollback()
    with Holder(app, shop.stamp_card.id):
        started = time.monotonic()
        response = shop.api.post(f"{V}/cards/{card}/stamps", json={"staff_pin": "4321"},
                                 headers={"Idempotency-Key": "busy-1"})
        waited = time.monotonic() - started
    assert response.status_code == 503, response.json
    assert response.json["error"]["code"] == "busy"
    assert response.headers["Retry-After"] == "1"
    _assert_documented_busy(response.json)
    assert 0.25 <= waited < 5
    assert _count("SELECT count(*) FROM loyalty_transactions") == 0
    assert _count("SELECT count(*) FROM idempotency_keys") == 0
    # The lock is free again: the same request (same key) now goes through.
    again = shop.api.post(f"{V}/cards/{card}/stamps", json={"staff_pin": "4321"},
                          headers={"Idempotency-Key": "busy-1"})
    assert again.status_code == 201, again.json


@sqlite_only
@pytest.mark.parametrize("app_config", [{"SQLITE_BUSY_TIMEOUT": 0.3}], indirect=True)
def test_sqlite_busy_on_a_page_is_the_error_page_with_retry_after(app, shop, client):
    owner = shop.vendor.owner
    email, password = owner.email, owner.plain_password
    token = csrf_from(client.get("/login").get_data(as_text=True))
    db.session.rollback()
    with Holder(app, shop.stamp_card.id):
        response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.mimetype == "text/html"
    assert "The server is busy" in response.get_data(as_text=True)


def test_a_stamp_waits_for_the_card_another_transaction_holds(app, shop, live_server):
    """PostgreSQL: the card's row lock (SELECT … FOR UPDATE); SQLite: the write lock (BEGIN IMMEDIATE)."""
    import httpx

    url = f"{live_server.url}{V}/cards/{shop.stamp_card.card_number}/stamps"
    card_id, key = shop.stamp_card.id, shop.key
    db.session.rollback()
    result = {}

    def stamp():
        with httpx.Client(timeout=60) as http:
            result["response"] = http.post(url, json={"staff_pin": "4321"}, headers={"Authorization": f"Bearer {key}"})

    with Holder(app, card_id):
        thread = threading.Thread(target=stamp)
        thread.start()
        thread.join(timeout=0.8)
        assert thread.is_alive(), "the stamp did not wait for the card"
    thread.join(timeout=30)
    assert result["response"].status_code == 201, result["response"].text
    assert _count("SELECT count(*) FROM loyalty_transactions") == 1


def _assert_writer_can_get_in(app, card_id):
    """Called in the middle of a long read: another connection must be able to write right away."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if IS_PG:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '100ms'"))
            conn.execute(text("SELECT id FROM loyalty_cards WHERE id = :id FOR UPDATE"), {"id": card_id})
        engine.dispose()
    else:
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")  # "database is locked" at once if the reader held the write lock
            conn.execute("ROLLBACK")
        finally:
            conn.close()


@pytest.fixture
def during_verification(app, shop, monkeypatch):
    from portal.services import ledger

    shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/stamps", json={"staff_pin": "4321"})
    card_id = shop.stamp_card.id
    db.session.rollback()
    checked = []
    original = ledger._verify_card

    def verify_card(card, txs, report):
        _assert_writer_can_get_in(app, card_id)
        checked.append(card.id)
        return original(card, txs, report)

    monkeypatch.setattr(ledger, "_verify_card", verify_card)
    return checked


def test_ledger_verification_from_the_command_line_never_holds_the_write_lock(runner, during_verification):
    result = runner.invoke(args=["loyalty", "verify-ledger"])
    assert result.exit_code == 0, result.output
    assert during_verification


def test_ledger_verification_from_the_admin_page_never_holds_the_write_lock(client, factories, login,
                                                                           during_verification):
    admin = factories.user(None, role="admin")
    login(admin.email, admin.plain_password)
    page = client.get("/admin/ledger")
    response = client.post("/admin/ledger", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 200
    assert during_verification


def test_the_ledger_append_leaves_every_column_it_does_not_set_to_its_default(app, shop):
    """The ledger's writes are statements built once and run with parameters: SQLAlchemy must still fill in every
    column a call does not give. A statement binding every column from the object would write NULL where a
    column has a default. The outbox row is given only its card and reason: every other column with a default
    (today attempts, created_at, available_at — and any added later) must hold it. The stamp gives no note: the
    ledger's note is its default, not NULL."""
    response = shop.api.post(f"{V}/cards/{shop.stamp_card.card_number}/stamps", json={"staff_pin": "4321"})
    assert response.status_code == 201, response.json
    db.session.rollback()
    outbox = WalletOutbox.__table__
    row = db.session.execute(select(outbox).where(outbox.c.card_id == shop.stamp_card.id,
                                                  outbox.c.reason == "balance")).one()._mapping
    defaulted = [c for c in outbox.columns if c.key not in ("id", "card_id", "reason")
                 and (c.default is not None or c.server_default is not None)]
    assert {c.key for c in defaulted} >= {"attempts", "created_at", "available_at"}
    for column in defaulted:
        assert row[column] is not None, column.key
        if column.default is not None and column.default.is_scalar:
            assert row[column] == column.default.arg, column.key
    assert row[outbox.c.delivered_at] is None and row[outbox.c.claimed_by] is None
    tx = db.session.execute(text("SELECT id, note, hash, created_at FROM loyalty_transactions")).one()
    assert tx.id == response.json["transaction"]["id"] and tx.note == "" and tx.hash and tx.created_at


@pytest.fixture
def statements(app):
    seen = []

    def record(conn, cursor, statement, params, context, executemany):
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(db.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("with_pin", [False, True])
def test_a_stamp_costs_a_known_number_of_statements(shop, factories, statements, with_pin):
    """The stamp path loads what it checks and nothing else: key; card with program and vendor; (staff and
    lockout;) today's stamps; ledger INSERT, card UPDATE, outbox INSERT — plus BEGIN (twice on SQLite: the key
    is read before the unit begins IMMEDIATE) and COMMIT. docs/performance.md counts the round trips."""
    program = factories.program(shop.vendor, require_pin=with_pin, cooldown_minutes=0)
    if with_pin:
        factories.pin(program, "4321")
    number = factories.card(program).card_number
    db.session.rollback()
    for _ in range(2):  # the second stamp is the steady state (the first one may store last_used_at of the PIN)
        statements.clear()
        response = shop.api.post(f"{V}/cards/{number}/stamps", json={"staff_pin": "4321"} if with_pin else {})
        assert response.status_code == 201, response.json
    queries = [s for s in statements if s not in ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA")]
    assert queries == ["SELECT", "SELECT"] + (["SELECT"] if with_pin else []) + ["SELECT", "INSERT", "UPDATE",
                                                                                 "INSERT"], statements


def test_a_logged_in_page_loads_what_it_shows_not_every_program_and_reward(shop, factories, login, client, app):
    """The user and the user's vendor are one statement; no program or reward catalog comes with them."""
    staff = factories.user(shop.vendor, role="staff")
    assert login(staff.email, staff.plain_password).status_code in (302, 303)
    seen = []
    listener = lambda conn, cursor, statement, *args: seen.append(statement)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = client.get("/tablet")
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert response.status_code == 200
    assert not [s for s in seen if "loyalty_rewards" in s or "FROM loyalty_programs" in s], seen
    assert len([s for s in seen if "FROM users" in s]) == 1
    assert not [s for s in seen if s.lstrip().startswith("SELECT") and "FROM vendors" in s and "users" not in s], seen


def test_a_program_edit_made_elsewhere_is_seen_by_the_next_stamp(app, shop, factories):
    """Nothing about a program is kept between requests: the stamp reads it with the card, every time."""
    program = factories.program(shop.vendor, require_pin=False, cooldown_minutes=0)
    number, program_id = factories.card(program).card_number, program.id
    assert shop.api.post(f"{V}/cards/{number}/stamps", json={}).status_code == 201
    db.session.rollback()
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with other.begin() as conn:
        conn.execute(text("UPDATE loyalty_programs SET active = :no WHERE id = :id"), {"no": False, "id": program_id})
    other.dispose()
    response = shop.api.post(f"{V}/cards/{number}/stamps", json={})
    assert response.status_code == 409 and response.json["error"]["code"] == "program_inactive", response.json


# --- loading is explicit: every relationship raises instead of loading lazily; what a page shows is loaded by its
# query (issue 15) ---

def test_every_relationship_refuses_to_load_lazily():
    """A relationship nobody asked for raises (``lazy="raise_on_sql"``) instead of costing a query per row."""
    from portal.extensions import db as _db

    lazies = {f"{mapper.class_.__name__}.{rel.key}": rel.lazy
              for mapper in _db.Model.registry.mappers for rel in mapper.relationships}
    assert lazies and set(lazies.values()) == {"raise_on_sql"}, lazies


def test_an_unloaded_relationship_raises_rather_than_querying(shop):
    from sqlalchemy import select
    from sqlalchemy.exc import InvalidRequestError

    from portal.models import LoyaltyCard, LoyaltyProgram

    card_id, program_id = shop.stamp_card.id, shop.points.id
    db.session.expunge_all()  # nothing in the identity map a many-to-one could be answered from
    card = db.session.scalar(select(LoyaltyCard).where(LoyaltyCard.id == card_id))
    with pytest.raises(InvalidRequestError, match="raise_on_sql"):
        card.program  # noqa: B018
    program = db.session.get(LoyaltyProgram, program_id)
    with pytest.raises(InvalidRequestError, match="raise_on_sql"):
        program.rewards  # noqa: B018


def _sql_of(client_call):
    seen = []
    listener = lambda conn, cursor, statement, *args: seen.append(" ".join(statement.split()))  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = client_call()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return response, [s for s in seen if not s.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA",
                                                                      "SAVEPOINT", "RELEASE"))]


def test_the_tablet_stamp_loads_the_card_program_and_vendor_in_one_statement_and_no_catalog(shop, factories,
                                                                                           login, client):
    """The staff tablet's stamp (the HTML stamp path): the card, its program and vendor in the one locked read;
    no reward catalog, no other program, no second read of the vendor."""
    staff = factories.user(shop.vendor, role="staff")
    assert login(staff.email, staff.plain_password).status_code in (302, 303)
    number = shop.stamp_card.card_number
    page = client.get(f"/tablet/card/{number}").get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "action": "stamp", "staff_pin": "4321",
            "idempotency_key": field_value(page, "idempotency_key")}
    db.session.rollback()
    response, sql = _sql_of(lambda: client.post(f"/tablet/card/{number}", data=form))
    assert response.status_code == 200 and "Stamp added" in response.get_data(as_text=True)
    assert not [s for s in sql if "loyalty_rewards" in s], sql
    card_reads = [s for s in sql if s.startswith("SELECT") and "FROM loyalty_cards" in s]
    assert card_reads and all("JOIN loyalty_programs" in s and "vendors" in s for s in card_reads), card_reads
    assert not [s for s in sql if s.startswith("SELECT") and "FROM loyalty_programs" in s], sql
    assert not [s for s in sql if s.startswith("SELECT") and "FROM vendors" in s and "users" not in s], sql


def test_the_card_page_loads_its_history_with_notes_in_one_more_statement(shop, factories, login, client):
    """An owner's card page: the card with program and vendor, the history, its notes (one statement for all of
    them, not one per row) — and not the program's reward catalog, which the page does not show."""
    for n in range(3):
        assert shop.api.post(f"{V}/cards/{shop.points_card.card_number}/points",
                             json={"amount": f"{n + 1}.00", "staff_pin": "4321"}).status_code == 201
    owner = shop.vendor.owner
    assert login(owner.email, owner.plain_password).status_code in (302, 303)
    db.session.rollback()
    response, sql = _sql_of(lambda: client.get(f"/customers/{shop.points_card.card_number}"))
    assert response.status_code == 200
    assert len([s for s in sql if "FROM loyalty_transaction_notes" in s]) == 1, sql
    assert len([s for s in sql if "FROM loyalty_transactions" in s and "notes" not in s]) == 1, sql
    assert not [s for s in sql if "FROM loyalty_rewards" in s], sql
