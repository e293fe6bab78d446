"""The per-process cache of resolved API keys (portal/services/api_key_cache.py): it saves the key look-up, and it
never lets a suspended vendor's or revoked key through once the change has committed. PostgreSQL: in this process at
once, in any other as soon as PostgreSQL delivers the NOTIFY of the migration's triggers. SQLite: every request
confirms its cached key by the configuration's version in its own transaction."""
from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import create_engine, event, text

from portal.db import run_in_transaction
from portal.extensions import db
from portal.services import accounts
from portal.services.api_key_cache import ApiKeyCache

IS_PG = os.environ.get("TEST_DATABASE_URL", "").startswith("postgres")

CACHE_ON = pytest.mark.parametrize("app_config", [{"API_KEY_CACHE_SECONDS": 60}], indirect=True)
needs_pg = pytest.mark.skipif(not IS_PG, reason="the cache emptied by NOTIFY is PostgreSQL's")


def _listening_cache(ttl=60.0) -> ApiKeyCache:
    """A cache whose listener is taken as connected, without a thread (for the bookkeeping tests)."""
    import os
    import threading

    cache = ApiKeyCache("", ttl)
    cache._pid = os.getpid()
    cache._listening = threading.Event()
    cache._listening.set()
    return cache


def test_an_entry_read_before_an_invalidation_is_not_kept():
    cache = _listening_cache()
    generation, hit = cache.get("k")
    assert hit is None
    cache.invalidate()  # a change committed while the request was reading the database
    cache.put("k", "stale", generation)
    assert cache.get("k")[1] is None
    generation, _ = cache.get("k")
    cache.put("k", "fresh", generation)
    assert cache.get("k")[1] == "fresh"


def test_entries_expire_and_nothing_is_used_while_not_listening():
    cache = _listening_cache(ttl=0.05)
    cache.put("k", "v", cache.get("k")[0])
    assert cache.get("k")[1] == "v"
    time.sleep(0.08)
    assert cache.get("k")[1] is None
    cache = _listening_cache()
    cache.put("k", "v", cache.get("k")[0])
    cache._listening.clear()  # the listener lost its connection
    assert cache.get("k")[1] is None
    cache.put("k2", "v", cache.get("k2")[0])
    cache._listening.set()
    assert cache.get("k2")[1] is None


needs_sqlite = pytest.mark.skipif(IS_PG, reason="SQLite's cache (checked by the configuration's version)")


@pytest.fixture
def version_reads(app):
    seen = []

    def count(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().startswith("SELECT config_version.version"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    yield seen
    event.remove(db.engine, "before_cursor_execute", count)


@needs_sqlite
@CACHE_ON
def test_sqlite_looks_a_key_up_once_then_confirms_it_by_the_version(shop, key_queries, version_reads):
    for _ in range(3):
        assert _programs(shop).status_code == 200
    card = shop.points_card.card_number
    assert shop.api.post(f"/api/v1/vendor/loyalty/cards/{card}/points",
                         json={"points": 3, "staff_pin": "4321"}).status_code == 201
    assert len(key_queries) == 1
    # Each later request confirms the key in its own transaction: the reads of programs by one read of the
    # version, the points by the version its card was read with.
    assert len(version_reads) == 2


def _commit_elsewhere(app, sql, params):
    """Hand-written SQL committed on another connection: no app code involved."""
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with other.begin() as conn:
        conn.execute(text(sql), params)
    other.dispose()


def _before_the_view(monkeypatch, app, sql, params):
    """Commit ``sql`` on another connection after the request took its key from the cache, before its view."""
    import portal

    original = portal.begin_unit_of_work

    def change_first():
        _commit_elsewhere(app, sql, params)
        original()

    monkeypatch.setattr(portal, "begin_unit_of_work", change_first)


@needs_sqlite
@CACHE_ON
@pytest.mark.parametrize("change, status, code", [
    ("UPDATE vendors SET active = 0 WHERE id = :vendor", 403, "vendor_suspended"),
    ("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE vendor_id = :vendor", 401, "unauthorized"),
    ("DELETE FROM api_keys WHERE vendor_id = :vendor", 401, "unauthorized"),
])
def test_sqlite_a_change_made_by_another_connection_applies_to_the_next_request(app, shop, key_queries, change,
                                                                                 status, code):
    vendor_id = shop.vendor.id
    assert _programs(shop).status_code == 200
    assert _programs(shop).status_code == 200
    db.session.rollback()  # the test's session is the requests' (one app context): hold no snapshot
    _commit_elsewhere(app, change, {"vendor": vendor_id})
    response = _programs(shop)
    assert response.status_code == status and response.json["error"]["code"] == code
    assert len(key_queries) == 2  # looked up again: the version had moved


@needs_sqlite
@CACHE_ON
def test_sqlite_an_unrelated_change_only_costs_a_look_up(app, shop, factories, key_queries):
    assert _programs(shop).status_code == 200
    factories.program(factories.vendor())  # another shop's program: the configuration's version moves
    assert _programs(shop).status_code == 200
    assert _programs(shop).status_code == 200
    assert len(key_queries) == 2


@needs_sqlite
@CACHE_ON
def test_sqlite_a_key_revoked_after_authentication_is_refused_by_the_unit(app, shop, monkeypatch):
    """The revocation commits after the request took the key from the cache and before its view: the view's own
    transaction sees it, and nothing is written."""
    vendor_id, card = shop.vendor.id, shop.stamp_card.card_number
    assert _programs(shop).status_code == 200
    _before_the_view(monkeypatch, app, "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE vendor_id = :v",
                     {"v": vendor_id})
    response = shop.api.post(f"/api/v1/vendor/loyalty/cards/{card}/stamps", json={"staff_pin": "4321"})
    assert response.status_code == 401, response.json
    db.session.rollback()
    assert db.session.execute(text("SELECT count(*) FROM loyalty_transactions")).scalar() == 0


@pytest.fixture
def cache(app):
    cache = app.extensions["api_key_cache"]
    assert cache.wait_listening(10), "the listener did not connect"
    yield cache
    cache.stop()


@pytest.fixture
def key_queries(app):
    seen = []

    def count(conn, cursor, statement, params, context, executemany):
        if "FROM api_keys" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    yield seen
    event.remove(db.engine, "before_cursor_execute", count)


def _programs(shop):
    return shop.api.get("/api/v1/vendor/loyalty/programs")


@needs_pg
@CACHE_ON
def test_a_key_is_looked_up_once(shop, cache, key_queries):
    assert _programs(shop).status_code == 200
    assert _programs(shop).status_code == 200
    card = shop.points_card.card_number
    assert shop.api.post(f"/api/v1/vendor/loyalty/cards/{card}/points",
                         json={"points": 3, "staff_pin": "4321"}).status_code == 201
    assert len(key_queries) == 1


@needs_pg
@CACHE_ON
def test_a_suspension_made_by_another_process_is_seen_at_once(app, shop, cache, key_queries):
    assert _programs(shop).status_code == 200
    assert _programs(shop).status_code == 200
    assert len(key_queries) == 1  # cached
    # Another process (here: another connection, which this process's cache knows nothing about) suspends the shop.
    _commit_elsewhere(app, "UPDATE vendors SET active = false WHERE id = :id", {"id": shop.vendor.id})
    deadline = time.monotonic() + 3
    while True:
        response = _programs(shop)
        if response.status_code == 403 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert response.status_code == 403 and response.json["error"]["code"] == "vendor_suspended"


@needs_pg
@CACHE_ON
def test_a_suspension_made_in_this_process_applies_to_the_next_request(app, shop, cache):
    assert _programs(shop).status_code == 200
    vendor_id = shop.vendor.id
    run_in_transaction(lambda: accounts.set_vendor_active(accounts.get_vendor(vendor_id), False))
    response = _programs(shop)  # no waiting: the commit itself emptied this process's cache
    assert response.status_code == 403 and response.json["error"]["code"] == "vendor_suspended"
    run_in_transaction(lambda: accounts.set_vendor_active(accounts.get_vendor(vendor_id), True))
    assert _programs(shop).status_code == 200


@needs_pg
@CACHE_ON
def test_a_lost_listener_connection_empties_the_cache_and_reconnects(app, shop, cache, key_queries):
    assert _programs(shop).status_code == 200
    assert _programs(shop).status_code == 200
    assert len(key_queries) == 1
    admin = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE application_name = 'portal-api-key-cache' AND datname = current_database()")
                              ).all()
    admin.dispose()
    assert killed and all(row[0] for row in killed)
    deadline = time.monotonic() + 5
    while cache.listening and time.monotonic() < deadline:  # the listener notices at once (socket closed)
        time.sleep(0.01)
    # Down or already back: either way, what was cached before the loss is gone.
    assert cache.wait_listening(10)
    assert _programs(shop).status_code == 200
    assert len(key_queries) == 2


@needs_sqlite
@CACHE_ON
def test_sqlite_a_revoked_key_gets_401_even_where_the_view_refuses(app, shop, monkeypatch):
    """The key is confirmed after the view: a refusal of the view (here: no such card) must not answer instead."""
    vendor_id = shop.vendor.id
    assert _programs(shop).status_code == 200
    _before_the_view(monkeypatch, app, "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE vendor_id = :v",
                     {"v": vendor_id})
    response = shop.api.post("/api/v1/vendor/loyalty/cards/0000000000/stamps", json={})
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"


@needs_sqlite
@CACHE_ON
def test_sqlite_a_key_renamed_meanwhile_is_used_with_its_new_name(app, shop, monkeypatch):
    """A key still valid but changed: the view runs again with the key as it is now (its name is the ledger's
    staff name for stamps made with it)."""
    vendor_id, card = shop.vendor.id, shop.points_card.card_number
    assert _programs(shop).status_code == 200
    _before_the_view(monkeypatch, app, "UPDATE api_keys SET name = 'Till 2' WHERE vendor_id = :v", {"v": vendor_id})
    response = shop.api.post(f"/api/v1/vendor/loyalty/cards/{card}/points", json={"points": 2})
    assert response.status_code == 201, response.json
    db.session.rollback()
    assert db.session.execute(text("SELECT staff_name FROM loyalty_transactions")).scalars().all() == ["Till 2"]
