"""A slug printed on a poster stays with its program: renaming keeps the old slug reserved across the platform, and
the old poster address (and the public API) still lead to the program."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import LoyaltyCard, LoyaltyProgram

V = "/api/v1/vendor/loyalty"


@pytest.fixture
def renamed(shop):
    """The shop's stamp program, renamed from its first slug to a new one (returns both slugs)."""
    old = shop.stamps.slug
    r = shop.api.patch(f"{V}/programs/{shop.stamps.id}", json={"slug": "coffee-club"})
    assert r.status_code == 200, r.json
    assert r.json["slug"] == "coffee-club"
    return old, "coffee-club"


def test_old_poster_address_redirects_to_the_renamed_program(client, shop, renamed):
    old, new = renamed
    r = client.get(f"/p/{old}?lang=fr")
    assert r.status_code == 302
    assert r.headers["Location"].endswith(f"/p/{new}?lang=fr")
    page = client.get(r.headers["Location"])
    assert page.status_code == 200 and "Coffee card" in page.get_data(as_text=True)
    # The query is carried over as it is, never read as url_for's own arguments.
    r = client.get(f"/p/{old}?slug=x&_external=1&_scheme=javascript")
    assert r.status_code == 302 and r.headers["Location"] == f"/p/{new}?slug=x&_external=1&_scheme=javascript"


def test_public_api_resolves_the_old_slug(client, shop, renamed):
    old, new = renamed
    r = client.get(f"/api/v1/loyalty/programs/{old}")
    assert r.status_code == 200
    assert r.json["slug"] == new and r.json["enroll_url"].endswith(f"/p/{new}")
    r = client.post(f"/api/v1/loyalty/programs/{old}/enroll", json={"email": "poster@example.lu", "consent": True})
    assert r.status_code == 201, r.json
    card = db.session.query(LoyaltyCard).filter_by(customer_email="poster@example.lu").one()
    assert card.program_id == shop.stamps.id


def test_another_shop_can_never_take_an_old_slug(shop, renamed, factories, make_api):
    old, _new = renamed
    other = factories.vendor("Other shop")
    api = make_api(factories.api_key(other))
    r = api.post(f"{V}/programs", json={"type": "stamps", "name": "Poster thief", "slug": old, "stamps_required": 5,
                                        "reward_text": "Nothing"})
    assert r.status_code == 422 and r.json["error"]["fields"]["slug"] == ["This address is already taken."]
    theirs = factories.program(other, name="Theirs")
    r = api.patch(f"{V}/programs/{theirs.id}", json={"slug": old})
    assert r.status_code == 422 and "slug" in r.json["error"]["fields"]
    # Nor by hand: the database itself refuses (the trigger on loyalty_programs).
    db.session.rollback()
    with pytest.raises(IntegrityError):
        db.session.execute(text("UPDATE loyalty_programs SET slug = :s WHERE id = :id"), {"s": old, "id": theirs.id})
        db.session.flush()
    db.session.rollback()
    # A program named like the retired slug gets another one.
    generated = factories.program(other, name=shop.stamps.name)
    assert generated.slug != old
    assert db.session.get(LoyaltyProgram, shop.stamps.id).slug == "coffee-club"


def test_a_program_may_go_back_to_its_own_old_slug(client, shop, renamed):
    old, new = renamed
    r = shop.api.patch(f"{V}/programs/{shop.stamps.id}", json={"slug": old})
    assert r.status_code == 200 and r.json["slug"] == old
    assert client.get(f"/p/{old}").status_code == 200
    r = client.get(f"/p/{new}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/p/{old}")


def test_shops_racing_for_one_slug_one_gets_it_the_others_a_form_error(shop, factories, live_server):
    """Through the real server with threads: whoever commits first owns the slug; the others get 422, never a 500
    (on PostgreSQL the loser's trigger insert waits for the winner, then its unique violation is the same refusal)."""
    import threading

    import httpx

    n = 6
    contenders = []
    for i in range(n):
        vendor = factories.vendor(f"Racer {i}")
        contenders.append((factories.program(vendor, name=f"Racer {i}").id, factories.api_key(vendor)))
    db.session.rollback()
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def rename(i):
        program_id, key = contenders[i]
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            results[i] = http.patch(f"{live_server.url}{V}/programs/{program_id}", json={"slug": "the-good-slug"},
                                    headers={"Authorization": f"Bearer {key}"})

    threads = [threading.Thread(target=rename, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [422] * (n - 1), [r.text for r in results]
    winner = next(i for i, r in enumerate(results) if r.status_code == 200)
    db.session.rollback()
    assert db.session.get(LoyaltyProgram, contenders[winner][0]).slug == "the-good-slug"
