"""The second ceiling for bench/stamp_throughput.py: the portal's own application (``create_app``: the same
extensions, request hooks, one-transaction-per-request wrapper, engine and pool, security headers, error handlers)
with one extra route that does one INSERT through the request's session and returns JSON. It measures what the
framework stack costs before any loyalty rule runs.
"""
import datetime as dt

from flask import request
from sqlalchemy import text

from portal import create_app
from portal.extensions import csrf, db

app = create_app()


@app.post("/bare/cards/<card>/stamps")
@csrf.exempt
def bare_insert(card):
    request.get_data()
    new_id = db.session.execute(text("INSERT INTO bench_bare (card, created_at) VALUES (:card, :now) RETURNING id"),
                                {"card": card, "now": dt.datetime.now(dt.timezone.utc).isoformat()}).scalar_one()
    return {"id": new_id, "card": card}, 201
