"""CSV downloads, streamed batch by batch (see ``services.exports``)."""
from __future__ import annotations

from flask import Response, request, stream_with_context

from ...services import clock, exports, programs
from . import bp
from .helpers import actor


def _csv_response(generator, name: str) -> Response:
    response = Response(stream_with_context(generator), mimetype="text/csv")
    stamp = clock.now().strftime("%Y%m%d")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _program_id():
    program_id = request.args.get("program_id", type=int)
    if program_id:
        programs.get_program(actor(), program_id)  # 404 for another vendor's program
    return program_id


@bp.get("/exports/cards.csv")
def export_cards():
    return _csv_response(exports.cards_csv(actor(), _program_id()), "cards")


@bp.get("/exports/transactions.csv")
def export_transactions():
    return _csv_response(exports.transactions_csv(actor(), _program_id()), "transactions")
