"""Every main page renders for its role (full page and htmx fragment)."""
import pytest


def test_owner_pages_render(owner, shop):
    for path in ("/dashboard", "/programs", "/programs/new", "/programs/new?type=points",
                 f"/programs/{shop.stamps.id}/edit", f"/programs/{shop.points.id}/edit", "/staff", "/customers",
                 f"/customers/{shop.stamp_card.card_number}", "/customers/import", "/tablet",
                 f"/tablet?card={shop.stamp_card.card_number}", f"/tablet?card={shop.points_card.card_number}",
                 f"/programs/{shop.stamps.id}/poster", "/account/password"):
        response = owner.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:2000])
        assert "HX-Request" in response.headers["Vary"]


def test_admin_pages_render(admin, shop):
    for path in ("/admin/", "/admin/programs", "/admin/stats", "/admin/ledger"):
        response = admin.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:2000])
