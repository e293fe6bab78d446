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
