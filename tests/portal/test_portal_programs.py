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
