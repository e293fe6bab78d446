"""Owner pages: programs, staff PINs, customers, corrections, dashboard, admin."""
import re

from sqlalchemy.orm import joinedload, selectinload

from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyProgram, LoyaltyTransaction, PinLockout, StaffPin, User
from portal.services import operations, pins
from support import field_value


def test_create_stamp_program_and_edit(owner, shop):
    response = owner.post("/programs/new", {"type": "stamps", "name": "Tea card", "stamps_required": "6",
                                            "reward_text": "A free tea", "cooldown_minutes": "0",
                                            "daily_stamp_limit": "3", "pin_max_attempts": "4",
                                            "pin_lockout_minutes": "30", "require_pin": "on",
                                            "background_color": "#112233", "foreground_color": "#ffffff",
                                            "label_color": "#eeeeee"})
    assert response.status_code == 303
    program = db.session.query(LoyaltyProgram).filter_by(name="Tea card").one()
    assert (program.stamps_required, program.cooldown_minutes, program.daily_stamp_limit, program.pin_max_attempts,
            program.pin_lockout_minutes, program.require_pin, program.background_color) == (
        6, 0, 3, 4, 30, True, "#112233")
    response = owner.post(f"/programs/{program.id}/edit", {"name": "Tea card", "stamps_required": "7",
                                                            "reward_text": "Tea", "cooldown_minutes": "5"})
    assert response.status_code == 303
    db.session.refresh(program)
    assert program.stamps_required == 7 and program.require_pin is False and program.cooldown_minutes == 5


def test_invalid_program_shows_errors_next_to_inputs(owner):
    response = owner.post("/programs/new", {"type": "stamps", "name": "", "stamps_required": "500",
                                            "reward_text": "x", "background_color": "red"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="f-stamps_required"[^>]*aria-invalid="true"', html)
    assert re.search(r'id="stamps_required-error">Must be between 1 and 100', html)
    assert 'id="name-error">This field is required.' in html
    assert 'id="background_color-error">Use a colour like #1f4e79.' in html


def test_points_program_with_rewards_catalog(owner):
    response = owner.post("/programs/new", {"type": "points", "name": "Bakery", "points_per_unit": "2",
                                            "currency": "EUR", "reward_id": ["", "", ""],
                                            "reward_name": ["Bread", "", "Cake"],
                                            "reward_cost": ["50", "", "abc"]})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    # The error shows on the third row (position 2), where it was typed, not on the second.
    assert 'id="reward-2-points_cost-error">Must be a whole number.' in html
    assert 'id="reward-1-points_cost-error"></p>' in html
    response = owner.post("/programs/new", {"type": "points", "name": "Bakery", "points_per_unit": "2",
                                            "currency": "EUR", "reward_id": ["", ""],
                                            "reward_name": ["Bread", "Cake"], "reward_cost": ["50", "200"]})
    assert response.status_code == 303
    program = db.session.query(LoyaltyProgram).options(selectinload(LoyaltyProgram.rewards)).filter_by(
        name="Bakery").one()
    assert sorted((r.name, r.points_cost) for r in program.rewards) == [("Bread", 50), ("Cake", 200)]
    bread = next(r for r in program.rewards if r.name == "Bread")
    cake = next(r for r in program.rewards if r.name == "Cake")
    # Untick "offered" for the bread: retired, not deleted.
    response = owner.post(f"/programs/{program.id}/edit", {
        "name": "Bakery", "points_per_unit": "2", "currency": "EUR", "reward_id": [str(bread.id), str(cake.id)],
        "reward_name": ["Bread", "Cake"], "reward_cost": ["50", "200"], "reward_active": [str(cake.id)]})
    assert response.status_code == 303
    db.session.refresh(bread)
    assert bread.active is False


def test_pause_and_resume(owner, shop):
    assert owner.post(f"/programs/{shop.stamps.id}/active", {"active": "0"}).status_code == 303
    db.session.refresh(shop.stamps)
    assert shop.stamps.active is False
    html = owner.get(f"/tablet?card={shop.stamp_card.card_number}").get_data(as_text=True)
    assert "This program is paused." in html and "Add stamp" not in html
    owner.post(f"/programs/{shop.stamps.id}/active", {"active": "1"})
    db.session.refresh(shop.stamps)
    assert shop.stamps.active is True


def _png(width, height, *, extra_chunks=b"", rgba=(200, 30, 30, 255)) -> bytes:
    """A real RGBA PNG (optionally with more chunks after IHDR)."""
    from portal.services.wallet import images

    png = images.encode_png_rgba(width, height, [bytes(rgba) * width] * height)
    return png[:33] + extra_chunks + png[33:]  # signature (8) + IHDR chunk (25), then the rest


def _chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _upload(owner, shop, png):
    import io

    return owner.post(f"/programs/{shop.stamps.id}/logo", {"logo": (io.BytesIO(png), "logo.png")},
                      content_type="multipart/form-data")


def test_logo_upload(owner, shop):
    import io

    from PIL import Image

    png = _png(1200, 400, extra_chunks=_chunk(b"tEXt", b"Comment\x00made by a tool"))
    response = _upload(owner, shop, png)
    assert response.status_code == 303
    stored = owner.get(f"/programs/{shop.stamps.id}/logo.png").data
    assert stored != png and b"made by a tool" not in stored  # re-encoded, fitted in Google's 660 px
    with Image.open(io.BytesIO(stored)) as image:
        assert image.size == (660, 220) and image.getpixel((10, 10)) == (200, 30, 30, 255)
    db.session.refresh(shop.stamps)
    assert bytes(shop.stamps.logo_png) == stored
    response = owner.post(f"/programs/{shop.stamps.id}/logo", {"logo": (io.BytesIO(b"GIF89a"), "x.gif")},
                          content_type="multipart/form-data")
    assert response.status_code == 303
    assert "Upload a PNG image" in owner.get(f"/programs/{shop.stamps.id}/edit").get_data(as_text=True)


def test_a_logo_bomb_is_refused_before_it_is_decoded(owner, shop, monkeypatch):
    """A few kilobytes whose IHDR declares 30000 × 30000 pixels: refused from the header, never decoded."""
    import struct
    import zlib

    from PIL import Image

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 6, 0, 0, 0)
    bomb = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 7000 * 1024)) + _chunk(b"IEND", b""))
    assert len(bomb) < 10_000

    def no_decoding(*args, **kwargs):
        raise AssertionError("the logo was decoded")

    monkeypatch.setattr(Image, "open", no_decoding)
    response = _upload(owner, shop, bomb)
    assert response.status_code == 303
    html = owner.get(f"/programs/{shop.stamps.id}/edit").get_data(as_text=True)
    assert "30000 × 30000 pixels" in html and "at most 3000 pixels on a side" in html
    db.session.refresh(shop.stamps)
    assert shop.stamps.logo_png is None


def test_an_unreadable_png_is_refused(owner, shop):
    import struct

    header = struct.pack(">IIBBBBB", 10, 10, 8, 6, 0, 0, 0)
    broken = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"not zlib") + _chunk(b"IEND", b"")
    assert _upload(owner, shop, broken).status_code == 303
    assert "could not be read" in owner.get(f"/programs/{shop.stamps.id}/edit").get_data(as_text=True)
    db.session.refresh(shop.stamps)
    assert shop.stamps.logo_png is None


def test_a_logo_bomb_stored_before_the_check_is_never_served(owner, shop, client):
    import struct

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 6, 0, 0, 0)
    shop.stamps.logo_png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")
    db.session.commit()
    assert owner.get(f"/programs/{shop.stamps.id}/logo.png").status_code == 404
    served = client.get(f"/p/{shop.stamps.slug}/logo.png")
    assert served.status_code == 200 and b"IHDR" in served.data
    assert struct.unpack(">II", served.data[16:24]) == (660, 660)  # the generated logo instead


def test_staff_pin_shown_once_and_works(owner, shop):
    response = owner.post("/staff/pins", {"program_id": str(shop.stamps.id), "staff_name": "Luc"})
    html = response.get_data(as_text=True)
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    pin = re.search(r'data-new-pin>(\d+)<', html).group(1)
    assert pin not in owner.get("/staff").get_data(as_text=True)
    row = db.session.query(StaffPin).filter_by(staff_name="Luc").one()
    from portal.services.accounts import actor_for_user

    staff = pins.check_staff_pin(shop.stamps, pin, actor_for_user(shop.vendor.owner)).staff
    assert staff.id == row.id
    db.session.rollback()
    duplicate = owner.post("/staff/pins", {"program_id": str(shop.stamps.id), "staff_name": "Max", "pin": pin})
    assert duplicate.status_code == 422 and "already uses this PIN" in duplicate.get_data(as_text=True)


def test_reset_unlock_remove_pin(owner, shop, factories):
    html = owner.post(f"/staff/pins/{shop.pin.id}/reset").get_data(as_text=True)
    assert re.search(r'data-new-pin>\d{4}<', html)
    db.session.add(PinLockout(program_id=shop.stamps.id, client_key="user:99", failed_attempts=0,
                              locked_until=__import__("portal.services.clock", fromlist=["now"]).now()
                              + __import__("datetime").timedelta(minutes=5)))
    db.session.commit()
    assert "The PIN pad is locked" in owner.get("/staff").get_data(as_text=True)
    assert owner.post(f"/staff/pins/{shop.pin.id}/unlock").status_code == 303
    db.session.rollback()
    assert db.session.query(PinLockout).filter_by(program_id=shop.stamps.id).count() == 0
    deleted = owner.post(f"/staff/pins/{shop.pin.id}/delete")
    assert deleted.status_code == 303, deleted.get_data(as_text=True)[-3000:]
    db.session.rollback()
    assert db.session.get(StaffPin, shop.pin.id).active is False  # retired (the ledger keeps pointing at it)
    assert owner.get("/staff").get_data(as_text=True).count("<td>Anna</td>") == 1  # only the points PIN is left


def test_staff_account(owner, shop, login, app):
    response = owner.post("/staff/users", {"email": "till@shop.test", "name": "Till", "password": "short"})
    assert response.status_code == 422 and "At least 10 characters." in response.get_data(as_text=True)
    response = owner.post("/staff/users", {"email": "till@shop.test", "name": "Till", "password": "till-password-1"})
    assert response.status_code == 303
    user = db.session.query(User).filter_by(email="till@shop.test").one()
    assert user.role == "staff" and user.vendor_id == shop.vendor.id
    assert login("till@shop.test", "till-password-1", target=app.test_client()).headers["Location"] == "/tablet"


def test_customer_search_live(owner, shop, factories):
    card = factories.card(shop.stamps, name="Zoé Muller", email="zoe@example.lu", phone="621 123 456")
    for q in ("zoé", "ZOE@ex", card.card_number[:5], "621123"):
        response = owner.htmx("GET", f"/customers?q={q}")
        html = response.get_data(as_text=True)
        assert card.card_number[:3] in html and "Zoé Muller" in html, q
        assert "<html" not in html
    assert "No card matches" in owner.htmx("GET", "/customers?q=nobody-here").get_data(as_text=True)


def test_adjust_and_void_with_reason(owner, shop):
    card = shop.stamp_card
    page = owner.get(f"/customers/{card.card_number}").get_data(as_text=True)
    key = field_value(page, "idempotency_key")
    missing = owner.post(f"/customers/{card.card_number}/adjust", {"delta": "2", "reason": "",
                                                                   "idempotency_key": key})
    assert missing.status_code == 422 and "This field is required." in missing.get_data(as_text=True)
    ok = owner.post(f"/customers/{card.card_number}/adjust", {"delta": "2", "reason": "Paper card",
                                                              "idempotency_key": key})
    assert ok.status_code == 303
    again = owner.post(f"/customers/{card.card_number}/adjust", {"delta": "2", "reason": "Paper card",
                                                                 "idempotency_key": key})
    assert again.status_code == 303
    db.session.rollback()
    assert db.session.get(LoyaltyCard, card.id).stamps == 2
    tx = db.session.query(LoyaltyTransaction).options(selectinload(LoyaltyTransaction.text_note)).filter_by(
        card_id=card.id).one()
    assert tx.type == "adjustment" and tx.display_note == "Paper card"
    assert tx.staff_name == shop.vendor.owner.display_name
    html = owner.get(f"/customers/{card.card_number}").get_data(as_text=True)
    assert "Paper card" in html
    response = owner.post(f"/transactions/{tx.id}/void", {"reason": "Typo", "idempotency_key": "v1"})
    assert response.status_code == 303
    db.session.rollback()
    assert db.session.get(LoyaltyCard, card.id).stamps == 0
    twice = owner.post(f"/transactions/{tx.id}/void", {"reason": "Typo", "idempotency_key": "v2"})
    assert twice.status_code == 409 and "already voided" in twice.get_data(as_text=True)


def test_dashboard_charts_and_refusals(owner, shop):
    from portal.services.accounts import actor_for_user

    actor = actor_for_user(shop.vendor.owner)
    operations.add_stamps(actor, shop.stamp_card.card_number, {"staff_pin": "4321"})
    db.session.commit()
    try:
        operations.add_stamps(actor, shop.stamp_card.card_number, {"staff_pin": "4321"})
    except Exception:  # noqa: BLE001 - the cooldown refusal is the point
        db.session.commit()
    html = owner.get("/dashboard").get_data(as_text=True)
    assert html.count('<svg viewBox="0 0 640 200" role="img"') == 4
    assert 'data-code="cooldown_active">1<' in html
    assert "Anna" in html  # top staff
    fragment = owner.htmx("GET", "/dashboard?days=7").get_data(as_text=True)
    assert fragment.startswith("\n<div id=\"stats\">") or fragment.lstrip().startswith('<div id="stats">')


def test_admin_vendors_suspend_and_create(admin, shop):
    html = admin.get("/admin/").get_data(as_text=True)
    assert "Café Test" in html
    assert admin.post(f"/admin/vendors/{shop.vendor.id}/active", {"active": "0"}).status_code == 303
    db.session.refresh(shop.vendor)
    assert shop.vendor.active is False
    admin.post(f"/admin/vendors/{shop.vendor.id}/active", {"active": "1"})
    db.session.refresh(shop.vendor)
    assert shop.vendor.active is True
    bad = admin.post("/admin/vendors", {"name": "New", "owner_email": "bad", "owner_password": "x"})
    assert bad.status_code == 422 and "Enter a valid email address." in bad.get_data(as_text=True)
    ok = admin.post("/admin/vendors", {"name": "New shop", "owner_email": "new@shop.test",
                                       "owner_password": "new-password-1", "locale": "de"})
    assert ok.status_code == 303
    assert db.session.query(User).options(joinedload(User.vendor)).filter_by(
        email="new@shop.test").one().vendor.locale == "de"


def test_admin_programs_stats_ledger(admin, shop):
    html = admin.get("/admin/programs").get_data(as_text=True)
    assert "Coffee card" in html and "Bakery points" in html
    assert "Platform statistics" in admin.get("/admin/stats").get_data(as_text=True)
    result = admin.htmx("POST", "/admin/ledger", {"vendor_id": ""}).get_data(as_text=True)
    assert 'data-ledger="ok"' in result and "<html" not in result


def test_a_card_number_in_the_url_that_names_no_card_is_404(owner, shop):
    """Whatever its shape (no card, a typo in the check digit, not a card number at all): 404, never 422."""
    number = shop.stamp_card.card_number
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    for bad in ("ACC-NO-SUCH-1", typo, "123"):
        for path in (f"/customers/{bad}", f"/tablet/card/{bad}", f"/tablet?card={bad}"):
            assert owner.get(path).status_code == 404, path
            assert owner.htmx("GET", path).status_code == 404, f"htmx {path}"
        stamp = owner.post(f"/tablet/card/{bad}", {"action": "stamp", "staff_pin": "4321", "idempotency_key": bad})
        assert stamp.status_code == 404, stamp.get_data(as_text=True)[:500]
        adjust = owner.post(f"/customers/{bad}/adjust", {"delta": "1", "reason": "x", "idempotency_key": bad + "a"})
        assert adjust.status_code == 404, adjust.get_data(as_text=True)[:500]
    assert db.session.query(LoyaltyTransaction).count() == 0
    for path in (f"/tablet/card/{typo}", f"/customers/{typo}"):  # still says why
        assert "typo" in owner.get(path).get_data(as_text=True), path
