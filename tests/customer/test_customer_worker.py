"""The wallet worker against the APNs and Google stand-ins: outages, retries, restarts, concurrent workers,
Google classes and objects, save links, and the CLI commands."""
from __future__ import annotations

import datetime as dt
import io
import json
import threading
import time
import zipfile
from collections import Counter

import pytest
from google.auth import jwt

from portal import create_app
from portal.extensions import db
from portal.models import AppleDeviceRegistration, LoyaltyCard, WalletOutbox
from portal.services import clock
from portal.services.wallet.worker import WalletWorker
from support import IS_PG, csrf_from, run_workers
from tests.wallet_support.google_standin import public_key_pem

from .conftest import ISSUER, PUSH_TOKENS

pytestmark = pytest.mark.timeout(120)
V = "/api/v1/vendor/loyalty"
PTID = "pass.lu.example.loyalty"


@pytest.fixture
def app_config(wallet_app_config, request):
    return {**wallet_app_config, **getattr(request, "param", {})}


def register(card, token, device):
    db.session.add(AppleDeviceRegistration(device_library_id=device, push_token=token, pass_type_id=PTID,
                                           serial_number=card.apple_serial))
    db.session.commit()


def stamp(shop, card):
    r = shop.api.post(f"{V}/cards/{card.card_number}/stamps", json={"staff_pin": "4321"})
    assert r.status_code == 201, r.json
    db.session.rollback()
    db.session.get(LoyaltyCard, card.id).last_stamp_at = None  # skip the cooldown
    db.session.commit()


def pending():
    db.session.rollback()
    return db.session.scalars(db.select(WalletOutbox).where(WalletOutbox.delivered_at.is_(None))).all()


def test_google_class_and_object_created_lazily_then_patched(shop, app, gstandin):
    card = shop.stamp_card
    assert gstandin.classes == {} and gstandin.objects == {}
    WalletWorker(app).run_once()  # the enrolment rows of the shop's two cards
    class_id, object_id = f"{ISSUER}.{shop.stamps.slug}", f"{ISSUER}.{card.apple_serial}"
    assert class_id in gstandin.classes and f"{ISSUER}.{shop.points.slug}" in gstandin.classes
    klass = gstandin.classes[class_id]
    assert klass["issuerName"] == "Café Test" and klass["programName"] == "Coffee card"
    assert klass["programLogo"]["sourceUri"]["uri"].startswith(
        f"https://loyalty.example.lu/p/{shop.stamps.slug}/logo.png?v=")
    obj = gstandin.objects[object_id]
    assert obj["classId"] == class_id and obj["loyaltyPoints"]["balance"] == {"int": 0}
    assert obj["barcode"]["value"] == card.card_number
    assert {t["language"] for t in obj["loyaltyPoints"]["localizedLabel"]["translatedValues"]} == {"fr", "de", "lb"}
    db.session.rollback()
    assert db.session.get(LoyaltyCard, card.id).google_object_id == object_id

    gstandin.clear_requests()
    stamp(shop, card)
    WalletWorker(app).run_once()
    assert gstandin.objects[object_id]["loyaltyPoints"]["balance"] == {"int": 1}
    calls = [(r.method, r.path.rsplit("/", 1)[-1] if r.path.count("/") > 3 else r.path)
             for r in gstandin.requests if r.path != "/token"]
    # The class is checked once per worker process; the object is PATCHed (it exists), never re-inserted.
    assert ("PATCH", object_id) in calls and ("POST", "/walletobjects/v1/loyaltyObject") not in calls


def test_google_save_link_is_a_signed_jwt(client, shop, app, service_account):
    card = shop.stamp_card
    html = client.get(f"/c/{card.public_token}").get_data(as_text=True)
    start = html.index("https://pay.google.com/gp/v/save/")
    url = html[start:html.index('"', start)]
    token = url.rsplit("/", 1)[1]
    with open(service_account, encoding="utf-8") as fh:
        info = json.load(fh)
    claims = jwt.decode(token, certs={info["private_key_id"]: public_key_pem(service_account)}, audience="google")
    assert claims["iss"] == info["client_email"] and claims["typ"] == "savetowallet"
    assert claims["exp"] - claims["iat"] == 30 * 24 * 3600
    assert claims["origins"] == ["https://loyalty.example.lu"]
    obj = claims["payload"]["loyaltyObjects"][0]
    assert obj["id"] == f"{ISSUER}.{card.apple_serial}" and obj["classId"] == f"{ISSUER}.{shop.stamps.slug}"
    # Before the worker created them, the link carries the class too; afterwards only the ids (a short link).
    assert claims["payload"]["loyaltyClasses"][0]["id"] == obj["classId"]
    WalletWorker(app).run_once()
    from portal.services.wallet import links

    db.session.rollback()
    short = links.for_card(db.session.get(LoyaltyCard, card.id))["google_save_url"]
    claims = jwt.decode(short.rsplit("/", 1)[1], certs={info["private_key_id"]: public_key_pem(service_account)},
                        audience="google")
    assert claims["payload"] == {"loyaltyObjects": [{"id": obj["id"], "classId": obj["classId"]}]}
    assert len(short) < len(url)
    # The public enrolment API returns the same links.
    r = client.post(f"/api/v1/loyalty/programs/{shop.stamps.slug}/enroll", json={"email": "new@example.lu",
                                                                                    "consent": True})
    assert r.json["pkpass_url"].endswith("/pass.pkpass") and r.json["google_save_url"].startswith("https://pay.")


@pytest.mark.parametrize("mode", ["down", "error"])
def test_outage_stamp_succeeds_nothing_lost_then_every_device_updated(shop, app, apns, gstandin, mode):
    card = shop.stamp_card
    register(card, PUSH_TOKENS[0], "phone-1")
    register(card, PUSH_TOKENS[1], "phone-2")
    WalletWorker(app).run_once()
    apns.clear()

    apns.set_mode(mode)
    gstandin.set_mode(mode)
    for _ in range(3):
        stamp(shop, card)  # stamps succeed while Apple and Google are unreachable
    result = WalletWorker(app).run_once()
    assert result.delivered == 0 and result.failed == 3
    rows = pending()
    assert len(rows) == 3 and all(r.attempts == 1 and r.last_error for r in rows)
    assert all(r.available_at > r.created_at for r in rows)

    apns.set_mode("ok")
    gstandin.set_mode("ok")
    apns.clear()
    time.sleep(0.25)  # the test retry backoff is capped at 0.2 s
    result = WalletWorker(app).run_once()
    assert result.delivered == 3 and pending() == []
    # Three changes coalesced into one push per device; each device got it.
    assert sorted(p.token for p in apns.pushes if p.status == 200) == sorted(PUSH_TOKENS[:2])
    assert gstandin.objects[f"{ISSUER}.{card.apple_serial}"]["loyaltyPoints"]["balance"] == {"int": 3}


def test_backoff_grows_exponentially_with_jitter_and_is_capped(app):
    from portal.services.wallet.worker import backoff_seconds

    app.config.update(WALLET_RETRY_BASE_SECONDS=10, WALLET_RETRY_MAX_SECONDS=3600)
    samples = {n: [backoff_seconds(n, app) for _ in range(50)] for n in (1, 2, 5, 20)}
    assert all(5 <= s <= 10 for s in samples[1]) and all(10 <= s <= 20 for s in samples[2])
    assert all(80 <= s <= 160 for s in samples[5]) and all(1800 <= s <= 3600 for s in samples[20])
    assert len(set(samples[5])) > 1  # jitter


def test_a_crashed_worker_lease_expires_and_another_delivers(shop, app, apns):
    card = shop.stamp_card
    register(card, PUSH_TOKENS[0], "phone-1")
    WalletWorker(app).run_once()
    apns.clear()
    stamp(shop, card)
    crashed = WalletWorker(app, worker_id="crashed")
    with app.app_context():
        jobs = crashed.claim()  # claimed, then the process died before sending
    assert [len(j.row_ids) for j in jobs] == [1]
    assert WalletWorker(app).run_once().claimed == 0  # the lease protects the row
    (row,) = pending()
    row.claimed_until = clock.now() - dt.timedelta(seconds=1)  # the lease runs out
    db.session.commit()
    assert WalletWorker(app).run_once().delivered == 1
    assert [p.token for p in apns.pushes] == [PUSH_TOKENS[0]]
    # The late worker cannot mark or reschedule a row that is no longer leased to it.
    with app.app_context():
        crashed.record(jobs)
    db.session.rollback()
    assert db.session.get(WalletOutbox, row.id).claimed_by != "crashed"


def test_two_workers_never_double_send(shop, app, apns, factories, app_config, database_url):
    cards = [shop.stamp_card] + [factories.card(shop.stamps) for _ in range(11)]
    for i, card in enumerate(cards):
        register(card, PUSH_TOKENS[i % 2], f"phone-{i}-a")
        register(card, PUSH_TOKENS[2 + i % 2], f"phone-{i}-b")
    WalletWorker(app).run_once()
    apns.clear()
    for card in cards:
        stamp(shop, card)

    errors = run_workers(lambda: create_app({**app.config, **app_config, "DATABASE_URL": database_url}),
                         WalletWorker, rounds=20)
    assert not errors, errors
    assert pending() == []
    db.session.rollback()
    claimed_by = Counter(r.claimed_by for r in db.session.scalars(
        db.select(WalletOutbox).where(WalletOutbox.reason == "balance")))
    assert set(claimed_by) <= {"w0", "w1"}
    # One change per card, two devices per card: exactly one push per (device, change).
    pushes = Counter(p.token for p in apns.pushes)
    assert sum(pushes.values()) == 2 * len(cards)
    assert pushes == Counter({PUSH_TOKENS[0]: 6, PUSH_TOKENS[1]: 6, PUSH_TOKENS[2]: 6, PUSH_TOKENS[3]: 6})


def test_worker_and_check_commands(shop, app, apns, runner):
    register(shop.stamp_card, PUSH_TOKENS[0], "phone-1")
    r = runner.invoke(args=["loyalty", "wallet-worker", "--once", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["delivered"] == 2 and data["failed"] == 0
    r = runner.invoke(args=["loyalty", "wallet-check"])
    assert r.exit_code == 0, r.output
    assert "Apple Wallet: OK" in r.output and "Google Wallet: OK" in r.output


@pytest.mark.parametrize("app_config", [{"APPLE_TEAM_ID": "WRONGTEAM1", "PUBLIC_BASE_URL": "http://shop.lan",
                                         "GOOGLE_WALLET_ISSUER_ID": "not-a-number"}], indirect=True)
def test_wallet_check_explains_problems(runner):
    r = runner.invoke(args=["loyalty", "wallet-check"])
    assert r.exit_code == 1
    assert "belongs to team 'TEAM123456', but team 'WRONGTEAM1' is configured" in r.output
    assert "not https" in r.output
    assert "issuer id 'not-a-number' is not numeric" in r.output


@pytest.mark.parametrize("app_config", [{"APPLE_PASS_CERT": None, "APPLE_PASS_KEY": None,
                                         "APPLE_PASS_TYPE_ID": None, "APPLE_TEAM_ID": None,
                                         "APPLE_WWDR_CERT": None, "GOOGLE_WALLET_ISSUER_ID": None,
                                         "GOOGLE_SERVICE_ACCOUNT_FILE": None}], indirect=True)
def test_wallet_check_without_any_wallet(runner, shop, app):
    r = runner.invoke(args=["loyalty", "wallet-check"])
    assert r.exit_code == 1 and "No wallet is configured" in r.output
    # The worker still drains the outbox (nothing to tell anyone).
    assert WalletWorker(app).run_once().delivered == 2 and pending() == []


def test_erasure_deactivates_the_google_object_and_voids_the_apple_pass(client, shop, app, apns, gstandin):
    card = shop.stamp_card
    register(card, PUSH_TOKENS[0], "phone-1")
    WalletWorker(app).run_once()
    object_id = f"{ISSUER}.{card.apple_serial}"
    name, token, serial, auth_token = card.customer_name, card.public_token, card.apple_serial, card.apple_auth_token
    assert name and gstandin.objects[object_id]["accountName"] == name
    apns.clear()
    page = client.get(f"/c/{token}/delete")

    r = client.post(f"/c/{token}/delete", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert r.status_code == 303
    assert WalletWorker(app).run_once().delivered == 1
    obj = gstandin.objects[object_id]
    assert obj["state"] == "INACTIVE" and name not in json.dumps(obj)
    # The phone is told, asks what changed, and fetches a voided pass with no balance and no name left on it.
    assert [p.token for p in apns.wait_for(1)] == [PUSH_TOKENS[0]]
    changed = client.get(f"/api/v1/loyalty/apple/v1/devices/phone-1/registrations/{PTID}")
    assert changed.status_code == 200 and changed.json["serialNumbers"] == [serial]
    r = client.get(f"/api/v1/loyalty/apple/v1/passes/{PTID}/{serial}",
                   headers={"Authorization": f"ApplePass {auth_token}"})
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.data)) as archive:
        p = json.loads(archive.read("pass.json"))
    assert p["voided"] is True and p["serialNumber"] == serial
    assert name not in json.dumps(p) and "headerFields" not in p["storeCard"] and "barcodes" not in p
    assert token not in json.dumps(p)
    # A wrong token still opens nothing.
    r = client.get(f"/api/v1/loyalty/apple/v1/passes/{PTID}/{serial}", headers={"Authorization": "ApplePass x"})
    assert r.status_code == 401


@pytest.mark.skipif(not IS_PG, reason="SQLite's claims run under its write lock")
def test_claims_in_the_same_instant_never_split_a_card(shop, app, app_config, database_url):
    """Worker A has picked the first pending row of a card and not committed its claim yet; worker B claims now.
    B must not take the card's second row: the two would deliver one card in parallel (a Google object inserted
    twice was seen this way)."""
    from sqlalchemy import event

    from portal.services import wallet_outbox

    db.session.execute(db.update(WalletOutbox).values(delivered_at=clock.now()))  # the enrolment rows: done
    card = shop.stamp_card
    wallet_outbox.enqueue(card)
    wallet_outbox.enqueue(card)
    db.session.commit()
    apps = [create_app({**app.config, **app_config, "DATABASE_URL": database_url}) for _ in range(2)]
    a, b = WalletWorker(apps[0], worker_id="a", batch=1), WalletWorker(apps[1], worker_id="b", batch=3)
    selected, b_finished = threading.Event(), threading.Event()

    def pause_after_select(conn, cursor, statement, params, context, executemany):
        if "SKIP LOCKED" in statement and not selected.is_set():
            selected.set()
            b_finished.wait(timeout=1.5)  # without serialised claims B finishes at once, inside this window

    with apps[0].app_context():
        engine_a = db.engine
    event.listen(engine_a, "after_cursor_execute", pause_after_select)
    claimed = {}

    def claim(name, worker, application):
        with application.app_context():
            claimed[name] = worker.claim()
        if name == "b":
            b_finished.set()

    thread_a = threading.Thread(target=claim, args=("a", a, apps[0]))
    thread_a.start()
    assert selected.wait(10)
    thread_b = threading.Thread(target=claim, args=("b", b, apps[1]))
    thread_b.start()
    thread_a.join(10)
    thread_b.join(10)
    event.remove(engine_a, "after_cursor_execute", pause_after_select)
    for worker, application in zip((a, b), apps):
        worker.close()
        with application.app_context():
            db.engine.dispose()
    cards_a = {job.card_id for job in claimed["a"]}
    cards_b = {job.card_id for job in claimed["b"]}
    assert cards_a == {card.id}
    assert cards_b == set(), "worker B took another row of the card worker A was claiming"
