"""The baseline of bench/stamp_throughput.py's targets: a plain Flask + Flask-SQLAlchemy application — no portal
code at all — whose one route does one INSERT through the session and commits, served by the same gunicorn
configuration as the portal. SQLite gets what any Flask app on SQLite would set (WAL, a busy timeout).

DATABASE_URL: the same URL the portal uses (postgresql+psycopg://… or sqlite:///…).
"""
import datetime as dt
import os

from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event, text

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30, "check_same_thread": False}}
db = SQLAlchemy(app)

with app.app_context():
    if db.engine.dialect.name == "sqlite":
        @event.listens_for(db.engine, "connect")
        def _pragmas(dbapi_connection, record):
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")


@app.post("/bare/cards/<card>/stamps")
def bare_insert(card):
    request.get_data()
    new_id = db.session.execute(text("INSERT INTO bench_bare (card, created_at) VALUES (:card, :now) RETURNING id"),
                                {"card": card, "now": dt.datetime.now(dt.timezone.utc).isoformat()}).scalar_one()
    db.session.commit()
    return {"id": new_id, "card": card}, 201


# ``floor``: the SQL a stamp needs, written by hand in the same plain application — no portal code, no rules, no
# ORM objects, no PIN, no idempotency, no nudges: the API key's look-up, the card read with its program and vendor
# (locked on PostgreSQL), the ledger row with its hash chain, the card's new balance and the wallet outbox row, on
# the portal's own tables (their triggers included), then one commit. What a stamp costs through SQLAlchemy's
# ordinary execution with nothing of the portal's around it: its ratio to the one-INSERT route bounds what any
# stamp implementation written this way can reach (docs/performance.md §1).
import hashlib  # noqa: E402

_KEY = text("SELECT k.id, k.vendor_id FROM api_keys k JOIN vendors v ON v.id = k.vendor_id "
            "WHERE k.key_hash = :digest AND k.revoked_at IS NULL AND v.active")
_POSTGRESQL = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
_CARD = text("SELECT c.id, c.program_id, c.stamps, c.lifetime_stamps, c.chain_head, p.type, p.active, v.timezone "
             "FROM loyalty_cards c JOIN loyalty_programs p ON p.id = c.program_id JOIN vendors v ON v.id = p.vendor_id "
             "WHERE c.card_number = :number AND p.vendor_id = :vendor_id" + (" FOR UPDATE OF c" if _POSTGRESQL else ""))
_LEDGER = text("INSERT INTO loyalty_transactions (card_id, program_id, type, delta, balance_after, api_key_id, note, "
               "created_at, prev_hash, hash) VALUES (:card_id, :program_id, 'stamp_add', 1, :balance, :key_id, '', "
               ":now, :prev, :hash) RETURNING id")
_CARD_UPDATE = text("UPDATE loyalty_cards SET stamps = :balance, lifetime_stamps = :lifetime, last_stamp_at = :now, "
                    "updated_at = :now, chain_head = :hash WHERE id = :card_id")
_OUTBOX = text("INSERT INTO wallet_outbox (card_id, reason, created_at, available_at, attempts) "
               "VALUES (:card_id, 'balance', :now, :now, 0)")


@app.post("/floor/cards/<number>/stamps")
def floor_stamp(number):
    request.get_json()
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    key = db.session.execute(_KEY, {"digest": hashlib.sha256(token.encode()).hexdigest()}).first()
    if key is None:
        return {"error": "unauthorized"}, 401
    card = db.session.execute(_CARD, {"number": number.replace("-", ""), "vendor_id": key.vendor_id}).first()
    if card is None or not card.active:
        return {"error": "not_found"}, 404
    now = dt.datetime.now(dt.timezone.utc)
    if not _POSTGRESQL:
        now = now.replace(tzinfo=None)  # how the portal's column type stores it there
    balance = card.stamps + 1
    digest = hashlib.sha256(f"{card.chain_head}|{card.id}|{balance}|{now.isoformat()}".encode()).hexdigest()
    tx_id = db.session.execute(_LEDGER, {"card_id": card.id, "program_id": card.program_id, "balance": balance,
                                         "key_id": key.id, "now": now, "prev": card.chain_head,
                                         "hash": digest}).scalar_one()
    db.session.execute(_CARD_UPDATE, {"balance": balance, "lifetime": card.lifetime_stamps + 1, "now": now,
                                      "hash": digest, "card_id": card.id})
    db.session.execute(_OUTBOX, {"card_id": card.id, "now": now})
    db.session.commit()
    return {"card": {"card_number": number, "stamps": balance}, "transaction": {"id": tx_id}}, 201
