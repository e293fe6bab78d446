"""Vendor API: /api/v1/vendor/loyalty — a vendor API key sees only its own vendor's data."""
from __future__ import annotations

from flask import Blueprint, g, request

from ...services import cards, messages, operations, pins, programs, reissue, relevance, staff_signals, stats
from ...services.wallet import health as wallet_health
from ...services.errors import NotFound
from ...services.serializers import card_to_dict, pin_to_dict, program_to_dict, transaction_to_dict
from ...services.validation import Fields
from .common import authenticate, balance_change, json_body, query_int

bp = Blueprint("vendor_api", __name__, url_prefix="/vendor/loyalty")


@bp.before_request
def _auth():
    authenticate("vendor")
    if any(isinstance(v, int) and v > 2**31 - 1 for v in (request.view_args or {}).values()):
        raise NotFound()  # ids are 32-bit: a larger one is no row (and SQLite would overflow binding it)


def _card_result(card, tx, status=200):
    return {"card": card_to_dict(card), "transaction": transaction_to_dict(tx)}, status, card.id


@bp.get("/programs")
def list_programs():
    return {"programs": [program_to_dict(p) for p in programs.list_programs(g.actor)]}


@bp.post("/programs")
def create_program():
    program = programs.create_program(g.actor, json_body())
    return program_to_dict(programs.get_program(g.actor, program.id, rewards=True)), 201  # with its vendor


@bp.get("/programs/<int:program_id>")
def get_program(program_id):
    return program_to_dict(programs.get_program(g.actor, program_id, rewards=True))


@bp.patch("/programs/<int:program_id>")
def update_program(program_id):
    return program_to_dict(programs.update_program(g.actor, program_id, json_body()))


@bp.get("/cards")
def list_cards():
    program_id = request.args.get("program_id")
    program_id = query_int("program_id", 0, 0, 2**31 - 1) if program_id else None
    limit = query_int("limit", 50, 1, 200)
    offset = query_int("offset", 0, 0, 1_000_000)
    q = request.args.get("q", "").replace("\x00", "")  # PostgreSQL text cannot hold NUL
    found = cards.search_cards(g.actor, q, program_id, limit=limit, offset=offset)
    return {"cards": [card_to_dict(c) for c in found], "limit": limit, "offset": offset}


@bp.post("/cards")
def create_card():
    card, created = cards.enroll_by_vendor(g.actor, json_body())
    return card_to_dict(card), 201 if created else 200


@bp.get("/cards/<card_number>")
def get_card(card_number):
    return card_to_dict(cards.get_card(g.actor, card_number))


@bp.get("/cards/<card_number>/transactions")
def card_transactions(card_number):
    card = cards.get_card(g.actor, card_number)
    limit = query_int("limit", 50, 1, 500)
    before = query_int("before_id", 0, 0, 2**31 - 1)  # ids are 32-bit: PostgreSQL refuses a larger parameter
    txs = cards.recent_transactions(card, limit=limit, before_id=before or None)
    return {"card_number": card.card_number, "transactions": [transaction_to_dict(t) for t in txs]}


@bp.post("/cards/<card_number>/stamps")
@balance_change
def add_stamps(card_number, idempotency_key):
    return _card_result(*operations.add_stamps(g.actor, card_number, json_body(), idempotency_key=idempotency_key),
                        201)


@bp.post("/cards/<card_number>/stamps/redeem")
@balance_change
def redeem_stamps(card_number, idempotency_key):
    return _card_result(*operations.redeem_stamps(g.actor, card_number, json_body(),
                                                  idempotency_key=idempotency_key), 201)


@bp.post("/cards/<card_number>/points")
@balance_change
def earn_points(card_number, idempotency_key):
    return _card_result(*operations.earn_points(g.actor, card_number, json_body(), idempotency_key=idempotency_key),
                        201)


@bp.post("/cards/<card_number>/points/redeem")
@balance_change
def redeem_points(card_number, idempotency_key):
    return _card_result(*operations.redeem_points(g.actor, card_number, json_body(),
                                                  idempotency_key=idempotency_key), 201)


@bp.post("/cards/<card_number>/adjustments")
@balance_change
def adjust(card_number, idempotency_key):
    return _card_result(*operations.adjust(g.actor, card_number, json_body(), idempotency_key=idempotency_key), 201)


@bp.post("/cards/<card_number>/replace")
@balance_change
def replace_card(card_number, idempotency_key):
    card, retired = reissue.replace_card(g.actor, card_number, json_body())
    return {"card": card_to_dict(card), "replaced_card_number": retired.card_number}, 201, card.id


@bp.post("/cards/<card_number>/merge")
@balance_change
def merge_card(card_number, idempotency_key):
    card, retired, txs = reissue.merge_cards(g.actor, card_number, json_body())
    return {"card": card_to_dict(card), "merged_card_number": retired.card_number,
            "transactions": [transaction_to_dict(t) for t in txs]}, 200, card.id


@bp.post("/transactions/<int:transaction_id>/void")
@balance_change
def void(transaction_id, idempotency_key):
    return _card_result(*operations.void_transaction(g.actor, transaction_id, json_body(),
                                                     idempotency_key=idempotency_key), 201)


@bp.post("/transactions/<int:transaction_id>/undo")
@balance_change
def undo(transaction_id, idempotency_key):
    return _card_result(*operations.undo_transaction(g.actor, transaction_id, json_body(),
                                                     idempotency_key=idempotency_key), 201)


@bp.get("/pins")
def list_pins():
    program_id = request.args.get("program_id")
    program_id = query_int("program_id", 0, 0, 2**31 - 1) if program_id else None
    return {"pins": [pin_to_dict(p) for p in pins.list_pins(g.actor, program_id)]}


@bp.post("/pins")
def create_pin():
    data = json_body()
    program_id = data.get("program_id")
    f = Fields(data)
    program_id = f.integer("program_id", required=True, minimum=1)
    f.done()
    row, plaintext = pins.create_pin(g.actor, program_id, data)
    body = pin_to_dict(row)
    body["pin"] = plaintext  # shown once
    return body, 201


@bp.delete("/pins/<int:pin_id>")
def delete_pin(pin_id):
    pins.delete_pin(g.actor, pin_id)
    return "", 204


@bp.post("/pins/<int:pin_id>/unlock")
def unlock_pin(pin_id):
    return pin_to_dict(pins.unlock(g.actor, pin_id))


@bp.get("/stats")
def vendor_stats():
    days = query_int("days", 30, 1, 365)
    program_id = request.args.get("program_id")
    program_id = query_int("program_id", 0, 0, 2**31 - 1) if program_id else None
    if program_id:
        programs.get_program(g.actor, program_id)
    return stats.vendor_stats(g.actor, days, program_id)


@bp.get("/cards/<card_number>/wallet-health")
def card_wallet_health(card_number):
    return wallet_health.jsonable(wallet_health.card_health(cards.get_card(g.actor, card_number)))


@bp.get("/wallet-health")
def wallet_health_summary():
    program_id = request.args.get("program_id")
    program_id = query_int("program_id", 0, 0, 2**31 - 1) if program_id else None
    if program_id:
        programs.get_program(g.actor, program_id)
    return wallet_health.summary(g.actor, program_id)


@bp.get("/programs/<int:program_id>/relevance")
def get_relevance(program_id):
    return relevance.get(g.actor, program_id)


@bp.put("/programs/<int:program_id>/relevance")
def put_relevance(program_id):
    return relevance.update(g.actor, program_id, json_body())
@bp.get("/staff/signals")
def staff_signals_list():
    """The week's staff signals (issue 17): of one person (``staff_name``) or of everybody."""
    staff = request.args.get("staff_name") or None
    if staff is not None and len(staff) > 120:
        raise NotFound()
    scope, signals = staff_signals.compute(g.actor, request.args.get("week") or None, staff)
    staff_signals.attach_transactions(signals)
    return {"week": scope.week, "start": scope.start.isoformat(), "end": scope.end.isoformat(),
            "signals": [staff_signals.signal_to_dict(s) for s in signals]}


@bp.post("/staff/signals/review")
def staff_signal_review():
    row = staff_signals.review(g.actor, json_body(), g.actor.name or "API")
    return {"key": row.signal_key, **staff_signals.review_to_dict(row)}, 201


# --- messages to pass holders and nudges (issue 16) -----------------------------------------------------------------

@bp.get("/messages")
def list_messages():
    return {"messages": [messages.message_to_dict(m) for m in messages.list_messages(g.actor)]}


@bp.post("/messages")
def create_message():
    data = json_body()
    f = Fields(data)
    send = f.boolean("send")
    f.done()
    message = messages.create(g.actor, data, send=send)
    return messages.message_to_dict(message), 201


@bp.post("/messages/preview")
def preview_message():
    counts = messages.preview(g.actor, json_body())
    counts["scheduled_at"] = counts["scheduled_at"].isoformat() if counts["scheduled_at"] else None
    return counts


@bp.get("/messages/<int:message_id>")
def get_message(message_id):
    return messages.message_to_dict(messages.get_message(g.actor, message_id))


@bp.post("/messages/<int:message_id>/send")
def send_message(message_id):
    return messages.message_to_dict(messages.send(g.actor, message_id))


@bp.get("/programs/<int:program_id>/nudges")
def get_nudges(program_id):
    return messages.nudge_settings(g.actor, program_id)[1]


@bp.put("/programs/<int:program_id>/nudges")
def put_nudges(program_id):
    return messages.save_nudges(g.actor, program_id, json_body())
