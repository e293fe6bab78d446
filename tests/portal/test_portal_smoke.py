"""Every main page renders for its role (full page and htmx fragment)."""

#: The root element of the block a page answers with on HX-Request; None: the page has no fragment (full page).
FRAGMENT_ROOTS = {
    "/dashboard": 'id="stats"', "/programs": None, "/programs/new": 'id="program-form"', "/staff": 'id="staff"',
    "/customers": 'id="results"', "/customers/import": None, "/tablet": 'id="work"', "/account/password": None,
    "/admin/": 'id="vendors"', "/admin/programs": None, "/admin/stats": None, "/admin/ledger": 'id="result"',
}


def _page_key(path):
    """The entry of FRAGMENT_ROOTS for ``path`` (ids and card numbers folded into their page)."""
    base = path.split("?")[0]
    if base.startswith("/customers/") and base != "/customers/import":
        return "card"
    if base.startswith("/programs/") and (base.endswith("/edit") or base == "/programs/new"):
        return "/programs/new"
    if base.endswith("/poster"):
        return "poster"
    return base


def _check_both(browser, path):
    full = browser.get(path)
    assert full.status_code == 200, (path, full.get_data(as_text=True)[:2000])
    assert "HX-Request" in full.headers["Vary"]
    page = full.get_data(as_text=True)
    assert "<html" in page and "<body" in page, path
    fragment = browser.htmx("GET", path)
    assert fragment.status_code == 200, (path, fragment.get_data(as_text=True)[:2000])
    assert "HX-Request" in fragment.headers["Vary"]
    html = fragment.get_data(as_text=True)
    key = _page_key(path)
    root = {"card": 'id="history"', "poster": None}.get(key, FRAGMENT_ROOTS.get(key, "unlisted"))
    assert root != "unlisted", f"{path}: say in FRAGMENT_ROOTS whether it has a fragment"
    if root is None:
        assert "<html" in html, f"{path} has no fragment block: the full page is expected"
        return
    # The fragment: the block alone, no layout around it, and the same block as in the full page.
    assert "<html" not in html and "<body" not in html and 'class="site-header"' not in html, (path, html[:300])
    assert html.lstrip().startswith("<div") and root in html.split(">", 1)[0], (path, html[:300])
    assert root in page and len(html) < len(page), path


def test_owner_pages_render(owner, shop):
    for path in ("/dashboard", "/programs", "/programs/new", "/programs/new?type=points",
                 f"/programs/{shop.stamps.id}/edit", f"/programs/{shop.points.id}/edit", "/staff", "/customers",
                 f"/customers/{shop.stamp_card.card_number}", "/customers/import", "/tablet",
                 f"/tablet?card={shop.stamp_card.card_number}", f"/tablet?card={shop.points_card.card_number}",
                 f"/programs/{shop.stamps.id}/poster", "/account/password"):
        _check_both(owner, path)


def test_admin_pages_render(admin, shop):
    for path in ("/admin/", "/admin/programs", "/admin/stats", "/admin/ledger"):
        _check_both(admin, path)
