"""Pages and answers with personal data are never cached (Cache-Control: no-store); what may be cached says so."""
from __future__ import annotations

V = "/api/v1/vendor/loyalty"


def _no_store(response, what):
    assert response.headers.get("Cache-Control") == "no-store", (what, response.status_code,
                                                                 response.headers.get("Cache-Control"))


def test_owner_and_tablet_pages_are_not_stored(owner, shop):
    number = shop.stamp_card.card_number
    for path in (f"/customers/{number}", f"/tablet/card/{number}", f"/tablet?card={number}", "/customers?q=Cust",
                 "/dashboard", "/staff", "/programs", f"/programs/{shop.stamps.id}/edit", "/account/password",
                 "/customers/0000000000", "/tablet/card/123"):
        _no_store(owner.get(path), path)
        _no_store(owner.htmx("GET", path), f"htmx {path}")
    stamped = owner.post(f"/tablet/card/{number}", {"action": "stamp", "staff_pin": "4321"})
    assert stamped.status_code == 200
    _no_store(stamped, "tablet stamp")


def test_staff_and_admin_pages_are_not_stored(staff, admin, shop):
    _no_store(staff.get(f"/tablet/card/{shop.stamp_card.card_number}"), "staff tablet")
    for path in ("/admin/", "/admin/programs", "/admin/ledger"):
        _no_store(admin.get(path), path)


def test_api_answers_are_not_stored(shop, factories, make_api):
    number = shop.stamp_card.card_number
    _no_store(shop.api.get(f"{V}/cards/{number}"), "card")
    _no_store(shop.api.get(f"{V}/cards/{number}/transactions"), "history")
    _no_store(shop.api.get(f"{V}/cards?q=Customer"), "search")
    _no_store(shop.api.post(f"{V}/cards/{number}/stamps", json={"staff_pin": "4321"}), "stamp")
    _no_store(shop.api.post(f"{V}/cards/{number}/stamps", json={"staff_pin": "0000"}), "refused stamp")
    admin = make_api(factories.api_key(None))
    _no_store(admin.get("/api/v1/admin/loyalty/programs"), "admin API")


def test_customer_card_pages_are_not_stored(client, shop):
    token = shop.stamp_card.public_token
    for path in (f"/c/{token}", f"/c/{token}/data.json", f"/c/{token}/qr.svg", "/c/no-such-token"):
        _no_store(client.get(path), path)


def test_what_may_be_cached_keeps_its_own_header(owner, client, shop):
    for path in ("/static/css/app.css", "/static/js/app.js"):
        response = client.get(path)
        assert response.status_code == 200 and response.headers.get("ETag"), path
        assert response.headers["Cache-Control"] != "no-store", path  # revalidated by its ETag
        response.close()
    theme = client.get(f"/p/{shop.stamps.slug}/theme.css")
    assert theme.headers["Cache-Control"] == "public, max-age=300"
    qr = owner.get(f"/programs/{shop.stamps.id}/qr.svg")
    assert qr.status_code == 200 and qr.headers["Cache-Control"] == "private, max-age=300"
