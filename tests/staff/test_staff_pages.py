"""The owner's Staff view, the review with a note (audit), the dashboard badge, opening hours, and the JSON API."""
from __future__ import annotations

import re

import pytest
import time_machine
from sqlalchemy import select

from portal.extensions import db
from portal.models import OpeningHours, SignalReview
from support import csrf_from

from .conftest import WEEK, at

MONDAY_AFTER = at(7, 9)  # Monday of 2026-W48: W47 is "last week"


@pytest.fixture
def travel():
    with time_machine.travel(MONDAY_AFTER, tick=False) as traveller:
        yield traveller


def _login_owner(login, vendor):
    response = login(vendor.owner.email, vendor.owner.plain_password)
    assert response.status_code in (302, 303), response.status_code


def test_people_and_person_pages_show_the_signals_and_their_transactions(planted, client, login, travel):
    vendor, owner, till = planted
    _login_owner(login, vendor)
    page = client.get(f"/staff/people?week={WEEK}").get_data(as_text=True)
    for name in ("Anna", "Bob", "Carl", "Dave", "Eve", "Frank"):
        assert f"name={name}&amp;week={WEEK}" in page
    page = client.get(f"/staff/person?name=Carl&week={WEEK}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-kind="busy_hour"' in html and "Carl made 30 stamps or redemptions" in html
    assert sorted(int(i) for i in re.findall(r'data-tx="(\d+)"', html)) == sorted(till.ids["busy_hour"])
    # htmx asks for the block only
    fragment = client.get(f"/staff/person?name=Carl&week={WEEK}", headers={"HX-Request": "true"})
    assert fragment.get_data(as_text=True).lstrip().startswith('<div id="person">')


def test_mark_reviewed_with_a_note_keeps_who_and_when(planted, client, login, travel):
    vendor, owner, till = planted
    _login_owner(login, vendor)
    badge = client.get("/staff/badge").get_data(as_text=True)
    assert 'data-unreviewed="6"' in badge
    html = client.get(f"/staff/person?name=Dave&week={WEEK}").get_data(as_text=True)
    key = re.search(r'name="key" value="([^"]+)"', html).group(1)
    form = {"csrf_token": csrf_from(html), "key": key, "note": "New till, Dave was testing it", "name": "Dave",
            "week": WEEK}
    response = client.post("/staff/signals/review", data=form)
    assert response.status_code == 303
    db.session.rollback()
    row = db.session.scalar(select(SignalReview).where(SignalReview.vendor_id == vendor.id))
    assert (row.signal_key, row.kind, row.staff_name, row.note) == (key, "burst", "Dave",
                                                                     "New till, Dave was testing it")
    assert row.user_id == vendor.owner.id and row.reviewed_at == MONDAY_AFTER
    html = client.get(f"/staff/person?name=Dave&week={WEEK}").get_data(as_text=True)
    assert "Reviewed by" in html and "New till, Dave was testing it" in html and 'name="key"' not in html
    assert 'data-unreviewed="5"' in client.get("/staff/badge").get_data(as_text=True)
    # A second review of the same signal is refused; the first stays.
    again = client.post("/staff/signals/review", data=form, follow_redirects=True)
    assert "already marked reviewed" in again.get_data(as_text=True)
    form["key"] = key.replace("burst", "self_card")
    unknown = client.post("/staff/signals/review", data=form, follow_redirects=True)
    assert "No such signal" in unknown.get_data(as_text=True)


def test_the_dashboard_carries_the_badge(planted, client, login, travel):
    vendor, owner, till = planted
    _login_owner(login, vendor)
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'hx-get="/staff/badge"' in html and 'href="/staff/people"' in html


def test_staff_accounts_and_other_shops_cannot_see_it(planted, clean, client, login, factories, travel):
    vendor, owner, till = planted
    staff = factories.user(vendor)
    login(staff.email, staff.plain_password)
    assert client.get("/staff/people").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/tablet").get_data(as_text=True))})
    other, *_ = clean
    _login_owner(login, other)
    assert client.get(f"/staff/person?name=Carl&week={WEEK}").status_code == 404
    assert client.get("/staff/person?name=Hugo&week=2026-W99").status_code == 422


def test_opening_hours_form(planted, client, login, travel):
    vendor, owner, till = planted
    _login_owner(login, vendor)
    html = client.get("/settings").get_data(as_text=True)
    assert 'value="08:00"' in html
    bad = client.post("/settings", data={"csrf_token": csrf_from(html), "opens_0": "25:99", "closes_0": "18:00",
                                         "opens_1": "18:00", "closes_1": "09:00"})
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "Enter a time like 08:30." in text and "The closing time must be after the opening time." in text
    good = client.post("/settings", data={"csrf_token": csrf_from(html), "opens_6": "10:00", "closes_6": "13:30"})
    assert good.status_code == 303
    db.session.rollback()
    rows = db.session.scalars(select(OpeningHours).where(OpeningHours.vendor_id == vendor.id)).all()
    assert [(r.weekday, r.opens_minute, r.closes_minute) for r in rows] == [(6, 600, 810)]


def test_api_lists_and_reviews_signals(planted, factories, make_api, travel):
    import json

    from tests.test_openapi import SPEC_PATH, SpecChecker

    check = SpecChecker(json.loads(SPEC_PATH.read_text()))
    vendor, owner, till = planted
    api = make_api(factories.api_key(vendor))
    url = f"/api/v1/vendor/loyalty/staff/signals?week={WEEK}"
    body = check(api.get(url), "GET", url, 200)
    assert body["week"] == WEEK and len(body["signals"]) == 6
    burst = next(s for s in body["signals"] if s["kind"] == "burst")
    assert [t["id"] for t in burst["transactions"]] == till.ids["burst"]
    assert burst["staff_name"] == "Dave" and burst["figures"]["cards"] == 6 and burst["review"] is None
    only = api.get(f"/api/v1/vendor/loyalty/staff/signals?week={WEEK}&staff_name=Eve").get_json()
    assert [s["kind"] for s in only["signals"]] == ["out_of_hours"]
    review = "/api/v1/vendor/loyalty/staff/signals/review"
    done = check(api.post(review, json={"key": burst["key"], "note": "ok"}), "POST", review, 201)
    assert done["note"] == "ok" and done["key"] == burst["key"]
    again = check(api.post(review, json={"key": burst["key"]}), "POST", review, 409)
    assert again["error"]["code"] == "conflict"
    missing = check(api.post(review, json={}), "POST", review, 422)
    assert missing["error"]["code"] == "validation_error"
    unknown = check(api.post(review, json={"key": "burst:2026-W47:1:Nobody"}), "POST", review, 404)
    assert unknown["error"]["code"] == "not_found"
    bad_week = check(api.get(url.replace(WEEK, "last")), "GET", url, 422)
    assert "week" in bad_week["error"]["fields"]
    assert check(api.get(url + "&staff_name=%00"), "GET", url, 404)["error"]["code"] == "not_found"
    body = api.get(f"/api/v1/vendor/loyalty/staff/signals?week={WEEK}").get_json()
    assert next(s for s in body["signals"] if s["kind"] == "burst")["review"]["note"] == "ok"
