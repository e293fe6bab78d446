"""The owner's journey in Chromium: compose a message, preview who gets a notification, send it, and watch the
progress move while a wallet worker delivers it through the APNs and Google stand-ins."""
from __future__ import annotations

import threading

import pytest

from portal.extensions import db
from portal.models import AppleDeviceRegistration
from portal.services.wallet.worker import WalletWorker
from tests.browser.browser_helpers import assert_accessible, shot, ui_login
from tests.browser.conftest import console_errors  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
PTID = "pass.lu.example.loyalty"


@pytest.fixture
def app_config(wallet_app_config):
    return wallet_app_config


def test_compose_preview_send_and_watch_progress(app, shop, factories, live_server, page, screenshot_dir,
                                                 console_errors, gstandin, apns):
    cards = [factories.card(shop.stamps, locale=("fr", "de", "lb", "en")[i % 4]) for i in range(24)]
    for i, card in enumerate(cards[:3]):
        db.session.add(AppleDeviceRegistration(device_library_id=f"dev-{i}", push_token=f"{i:02d}" * 32,
                                               pass_type_id=PTID, serial_number=card.apple_serial))
    db.session.commit()
    WalletWorker(app).run_once()  # the Google objects exist: these holders have a pass
    everyone = len(cards) + 1  # and the shop's own stamp card

    ui_login(page, live_server.url, shop.vendor.owner.email, shop.vendor.owner.plain_password)
    page.get_by_role("link", name="Messages").click()
    page.get_by_role("link", name="New message").click()
    page.get_by_label("Program", exact=True).select_option(label="Coffee card")
    page.get_by_label("Every card of the program").check()
    page.get_by_label("English").fill("Our new autumn blend is here: come and taste it!")
    page.get_by_label("Français").fill("Notre nouveau mélange d'automne est arrivé : venez le goûter !")
    page.get_by_role("button", name="Preview").click()
    notify = page.locator('[data-count="notify"]')
    notify.wait_for()
    assert notify.inner_text() == str(everyone)
    assert page.locator('[data-count="silent"]').inner_text() == "0"
    assert page.locator('[data-count="none"]').inner_text() == "0"
    assert page.get_by_label("English").input_value().startswith("Our new autumn blend")  # the form stayed
    assert_accessible(page, "compose")
    shot(page, screenshot_dir, "messages-compose-preview")

    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/messages/*")
    assert page.locator("[data-progress]").get_attribute("data-progress") == f"0/{everyone}"
    worker = WalletWorker(app, batch=10)
    thread = threading.Thread(target=worker.run_forever, kwargs={"idle_sleep": 0.2}, daemon=True)
    thread.start()
    try:
        page.locator(f'[data-progress="{everyone}/{everyone}"]').wait_for(timeout=60_000)
        page.get_by_text("Sent", exact=True).wait_for()
    finally:
        worker.stop()
        thread.join(30)
    assert_accessible(page, "progress")
    shot(page, screenshot_dir, "messages-progress-done")
    assert len([r for r in gstandin.requests if r.path.endswith("/addMessage")]) == everyone

    # The automatic nudges of the program.
    page.goto(f"{live_server.url}/programs/{shop.stamps.id}/nudges")
    page.get_by_role("checkbox").first.check()
    page.get_by_label("English").first.fill("Only one more stamp to your free coffee!")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Your changes were saved.").wait_for()
    assert_accessible(page, "nudges")
    shot(page, screenshot_dir, "messages-nudges")

    # The customer sees the message on their card page (in their language) and can turn messages off.
    french = cards[0]  # locale "fr"
    page.goto(f"{live_server.url}/c/{french.public_token}")
    page.get_by_text("Notre nouveau mélange d’automne".replace("’", "'")).wait_for()
    page.get_by_role("button", name="Désactiver les messages").click()
    page.get_by_role("button", name="Activer les messages").wait_for()
    shot(page, screenshot_dir, "messages-card-page-opted-out")
    assert not console_errors
