"""Programs: create, edit, pause, inline validation, logo — the same rules as the API."""
from portal.models import LoyaltyProgram


def test_validate_shows_field_errors_and_keeps_nothing(owner, app, server_errors):
    from portal.extensions import db

    before = db.session.query(LoyaltyProgram).count()
    response = owner.htmx("POST", "/programs/validate", {"type": "stamps", "name": "X", "stamps_required": "0",
                                                         "reward_text": ""})
    assert response.status_code == 200, server_errors()
    html = response.get_data(as_text=True)
    assert "between 1 and 100" in html and "hx-swap-oob" in html
    assert "reward_text-error" in html
    assert "<html" not in html  # the fragment only
    assert db.session.query(LoyaltyProgram).count() == before


def test_inline_validation_of_a_design_change_queues_no_wallet_updates(owner, shop, server_errors):
    """Validation rolls back: the design edit's INSERT … SELECT into the wallet outbox is not even run; saving the
    same form queues one update per card."""
    from sqlalchemy import event

    from portal.extensions import db
    from portal.models import WalletOutbox

    statements = []

    def record(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO WALLET_OUTBOX"):
            statements.append(statement)

    form = {"name": "Coffee club", "stamps_required": "10", "reward_text": "A free coffee",
            "background_color": "#203040"}
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = owner.htmx("POST", f"/programs/{shop.stamps.id}/validate", form)
        assert response.status_code == 200, server_errors()
        assert statements == []
        response = owner.post(f"/programs/{shop.stamps.id}/edit", form)
        assert response.status_code == 303, server_errors()
        assert len(statements) == 1
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    db.session.rollback()
    # The card's enrolment update still waits: the design edit coalesced into it.
    assert db.session.query(WalletOutbox).filter_by(card_id=shop.stamp_card.id, delivered_at=None).count() == 1
