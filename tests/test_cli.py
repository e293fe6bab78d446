"""The ``flask loyalty …`` commands: JSON output, errors on stderr with a non-zero exit, and the demo."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from portal.extensions import db


def run(runner, *args):
    result = runner.invoke(args=list(args))
    return result


def test_create_admin_vendor_and_keys(runner, client):
    r = run(runner, "loyalty", "create-admin", "--email", "ops@example.lu", "--password", "a-long-password", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["role"] == "admin"
    r = run(runner, "loyalty", "create-vendor", "--name", "Boulangerie Léa", "--owner-email", "lea@example.lu",
            "--owner-password", "another-long-pw", "--locale", "lu", "--json")
    assert r.exit_code == 0, r.output
    vendor = json.loads(r.output)
    assert vendor["slug"] == "boulangerie-lea" and vendor["locale"] == "lb" and vendor["id"] > 0
    r = run(runner, "loyalty", "create-api-key", "--vendor", vendor["slug"], "--json")
    key = json.loads(r.output)["api_key"]
    assert client.get("/api/v1/vendor/loyalty/programs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    r = run(runner, "loyalty", "create-api-key", "--admin", "--json")
    admin_key = json.loads(r.output)["api_key"]
    assert client.get("/api/v1/admin/loyalty/stats",
                      headers={"Authorization": f"Bearer {admin_key}"}).json["vendors"] == 1
    # Only a hash of the key is stored.
    stored = db.session.execute(text("SELECT key_hash FROM api_keys")).scalars().all()
    assert key not in stored and all(len(h) == 64 for h in stored)


@pytest.mark.parametrize("args,needle", [
    (["create-admin", "--email", "bad", "--password", "a-long-password"], "email"),
    (["create-admin", "--email", "a@b.lu", "--password", "short"], "password"),
    (["create-vendor", "--name", "", "--owner-email", "a@b.lu", "--owner-password", "a-long-password"], "name"),
    (["create-vendor", "--name", "X", "--owner-email", "a@b.lu", "--owner-password", "a-long-password",
      "--timezone", "Mars/Olympus"], "timezone"),
    (["create-api-key", "--vendor", "nope"], "Not found"),
    (["create-api-key"], "either"),
])
def test_errors_go_to_stderr_with_nonzero_exit(runner, args, needle):
    r = run(runner, "loyalty", *args, "--json")
    assert r.exit_code != 0
    assert needle.lower() in r.stderr.lower()
    assert r.stdout == ""
    json.loads(r.stderr)


def test_duplicate_email_is_refused(runner):
    args = ["loyalty", "create-admin", "--email", "x@example.lu", "--password", "a-long-password"]
    assert run(runner, *args).exit_code == 0
    second = run(runner, *args)
    assert second.exit_code == 1 and "already" in second.stderr


def test_demo_json_and_reset(runner, client):
    r = run(runner, "loyalty", "demo", "--json")
    assert r.exit_code == 0, r.output
    demo = json.loads(r.output)
    for key in ("owner", "admin", "vendor_api_key", "admin_api_key", "programs", "staff", "cards"):
        assert key in demo
    assert {p["type"] for p in demo["programs"]} == {"stamps", "points"}
    assert all(s["pin"].isdigit() for s in demo["staff"])
    assert demo["cards"] and all(len(c["card_number"]) == 10 for c in demo["cards"])
    auth = {"Authorization": f"Bearer {demo['vendor_api_key']}"}
    programs = client.get("/api/v1/vendor/loyalty/programs", headers=auth).json["programs"]
    stamp_program = next(p for p in programs if p["type"] == "stamps")
    assert stamp_program["require_pin"] is True
    stats = client.get("/api/v1/vendor/loyalty/stats", headers=auth).json
    assert stats["totals"]["stamps_issued"] > 0 and stats["totals"]["cards"] == len(demo["cards"])
    # Running it again keeps the same demo; --reset makes a new one and the ledger still verifies.
    again = json.loads(run(runner, "loyalty", "demo", "--json").output)
    assert again["vendor_api_key"] == demo["vendor_api_key"]
    reset = run(runner, "loyalty", "demo", "--reset", "--json")
    assert reset.exit_code == 0, reset.output
    fresh = json.loads(reset.output)
    assert fresh["vendor_api_key"] != demo["vendor_api_key"]
    assert client.get("/api/v1/vendor/loyalty/programs", headers=auth).status_code == 401
    verify = run(runner, "loyalty", "verify-ledger", "--json")
    assert verify.exit_code == 0 and json.loads(verify.output)["ok"]
    # The ledger triggers are back after the reset.
    with pytest.raises(Exception, match="append-only"):
        db.session.execute(text("DELETE FROM loyalty_transactions"))
    db.session.rollback()


def test_verify_ledger_detects_an_altered_row(runner, shop):
    """Someone with database access disables the trigger and edits a transaction: the hash chain catches it."""
    shop.api.post(f"/api/v1/vendor/loyalty/cards/{shop.points_card.card_number}/points", json={"points": 5})
    from portal.services.ledger_admin import TRIGGERS

    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        db.session.execute(text(f"ALTER TABLE loyalty_transactions DISABLE TRIGGER {TRIGGERS[0]}"))
        db.session.execute(text("UPDATE loyalty_transactions SET note = 'forged'"))
        db.session.execute(text(f"ALTER TABLE loyalty_transactions ENABLE TRIGGER {TRIGGERS[0]}"))
    else:
        sql = db.session.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": TRIGGERS[0]}).scalar()
        db.session.execute(text(f"DROP TRIGGER {TRIGGERS[0]}"))
        db.session.execute(text("UPDATE loyalty_transactions SET note = 'forged'"))
        db.session.execute(text(sql))
    db.session.commit()
    r = run(runner, "loyalty", "verify-ledger", "--json")
    assert r.exit_code == 1
    assert any("hash mismatch" in p for p in json.loads(r.output)["problems"])


def test_verify_ledger_checks_the_cards_chain_head(runner, shop):
    """Appends link to the hash kept on the card (``chain_head``): verify-ledger checks it matches the newest row,
    so a forged head (which the next stamp would chain to) is caught before it spreads."""
    card = shop.points_card.card_number
    for points in (5, 7):
        assert shop.api.post(f"/api/v1/vendor/loyalty/cards/{card}/points", json={"points": points,
                                                                                   "staff_pin": "4321"}).status_code == 201
    newest = db.session.execute(text("SELECT hash FROM loyalty_transactions WHERE card_id = :c ORDER BY id DESC"),
                                {"c": shop.points_card.id}).scalars().first()
    head = db.session.execute(text("SELECT chain_head FROM loyalty_cards WHERE id = :c"),
                              {"c": shop.points_card.id}).scalar()
    assert head == newest
    assert json.loads(run(runner, "loyalty", "verify-ledger", "--json").output)["ok"]
    db.session.execute(text("UPDATE loyalty_cards SET chain_head = :h WHERE id = :c"),
                       {"h": "f" * 64, "c": shop.points_card.id})
    db.session.commit()
    r = run(runner, "loyalty", "verify-ledger", "--json")
    assert r.exit_code == 1
    assert any("chain head" in p for p in json.loads(r.output)["problems"])
