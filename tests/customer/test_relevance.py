"""Relevance: shop locations (≤ 10, validated) and a time-boxed offer reach pass.json and the Google class; nothing
is added that the shop did not set. The owner edits them on a Flask-WTF page (errors next to the fields) or through
the API."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from portal.extensions import db
from portal.models import WalletOutbox
from portal.services.wallet import google_objects
from portal.services.wallet.worker import WalletWorker
from support import csrf_from

pytestmark = pytest.mark.timeout(90)
V = "/api/v1/vendor/loyalty"


@pytest.fixture
def app_config(wallet_app_config):
    return wallet_app_config


def pass_json(client, card) -> dict:
    r = client.get(f"/c/{card.public_token}/pass.pkpass")
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.data)) as archive:
        return json.loads(archive.read("pass.json"))


KIRCHBERG = {"latitude": 49.6286, "longitude": 6.1647, "relevant_text": "Your coffee card works here"}
GARE = {"latitude": 49.6000, "longitude": 6.1333}


def test_nothing_is_added_that_the_shop_did_not_set(client, shop):
    p = pass_json(client, shop.stamp_card)
    assert not {"locations", "relevantDate", "relevantDates"} & set(p)


def test_locations_and_dates_reach_the_pass_and_the_google_class(app, client, shop, gstandin):
    url = f"{V}/programs/{shop.stamps.id}/relevance"
    r = shop.api.put(url, json={"locations": [KIRCHBERG, GARE], "relevant_from": "2026-12-01T08:00",
                                "relevant_until": "2026-12-24T18:00:00+01:00"})
    assert r.status_code == 200, r.json
    assert r.json["relevant_from"] == "2026-12-01T07:00:00+00:00"  # 08:00 in Luxembourg (CET)
    assert shop.api.get(url).json == r.json
    p = pass_json(client, shop.stamp_card)
    assert p["locations"] == [{"latitude": 49.6286, "longitude": 6.1647,
                               "relevantText": "Your coffee card works here"},
                              {"latitude": 49.6, "longitude": 6.1333}]  # no empty relevantText
    assert p["relevantDates"] == [{"startDate": "2026-12-01T07:00:00Z", "endDate": "2026-12-24T17:00:00Z"}]
    assert p["relevantDate"] == "2026-12-01T07:00:00Z"
    assert "locations" not in pass_json(client, shop.points_card)  # another program: nothing

    # The passes already in wallets are updated (one coalesced row per card) and Google gets merchantLocations.
    db.session.rollback()
    waiting = db.session.scalars(db.select(WalletOutbox.card_id).where(WalletOutbox.delivered_at.is_(None))).all()
    assert shop.stamp_card.id in waiting
    WalletWorker(app).run_once()
    stored = gstandin.classes[google_objects.class_id(shop.stamps, app)]
    assert stored["merchantLocations"] == [{"latitude": 49.6286, "longitude": 6.1647},
                                           {"latitude": 49.6, "longitude": 6.1333}]

    # Clearing everything removes it from the pass again.
    assert shop.api.put(url, json={"locations": []}).status_code == 200
    assert not {"locations", "relevantDate", "relevantDates"} & set(pass_json(client, shop.stamp_card))


@pytest.mark.parametrize("body, field", [
    ({"locations": [GARE] * 11}, "locations"),
    ({"locations": [{"latitude": 91, "longitude": 6}]}, "locations.0.latitude"),
    ({"locations": [GARE, {"latitude": 49, "longitude": -180.5}]}, "locations.1.longitude"),
    ({"locations": [{"latitude": "north", "longitude": 6}]}, "locations.0.latitude"),
    ({"locations": [{"latitude": 49}]}, "locations.0.longitude"),
    ({"locations": [{**GARE, "relevant_text": "x" * 121}]}, "locations.0.relevant_text"),
    ({"relevant_from": "2026-12-01T08:00"}, "relevant_until"),
    ({"relevant_from": "2026-12-24T08:00", "relevant_until": "2026-12-01T08:00"}, "relevant_until"),
    ({"relevant_from": "tomorrow", "relevant_until": "2026-12-01T08:00"}, "relevant_from"),
    ({"locations": "here"}, "locations"),
])
def test_invalid_relevance_is_refused_with_the_field(shop, body, field):
    r = shop.api.put(f"{V}/programs/{shop.stamps.id}/relevance", json=body)
    assert r.status_code == 422, r.json
    assert r.json["error"]["code"] == "validation_error" and field in r.json["error"]["fields"]


def test_the_owner_edits_relevance_in_the_program_settings(client, shop, login):
    owner = shop.vendor.owner
    assert login(owner.email, owner.plain_password).status_code == 302
    url = f"/programs/{shop.stamps.id}/relevance"
    edit = client.get(f"/programs/{shop.stamps.id}/edit?lang=en").get_data(as_text=True)
    assert url in edit  # linked from the program's settings
    page = client.get(url + "?lang=en")
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    bad = client.post(url, data={"csrf_token": token, "locations-2-latitude": "95", "locations-2-longitude": "6.1",
                                 "relevant_from": "2026-12-01T08:00"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    # The message sits next to the row typed in (row 2), and what was typed is kept.
    assert 'id="locations-2-latitude-error">A latitude is between -90 and 90.' in html
    assert 'value="95"' in html and 'id="relevant_until-error">Set both the start' in html
    ok = client.post(url, data={"csrf_token": token, "locations-0-latitude": "49,6286",
                                "locations-0-longitude": "6.1647", "locations-0-relevant_text": "Near the shop",
                                "relevant_from": "2026-12-01T08:00", "relevant_until": "2026-12-24T18:00"})
    assert ok.status_code == 303
    again = client.get(url + "?lang=en").get_data(as_text=True)
    assert 'value="49.6286"' in again and 'value="2026-12-24T18:00"' in again
    assert shop.api.get(f"{V}/programs/{shop.stamps.id}/relevance").json["locations"] == [
        {"latitude": 49.6286, "longitude": 6.1647, "relevant_text": "Near the shop"}]
