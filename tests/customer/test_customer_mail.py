"""A customer's card is theirs alone: a repeat enrolment reveals nothing and sends a sign-in link by email
(delivered through a real SMTP server in the test process), the link opens the card once and expires, the mail
outbox survives an SMTP outage and is never sent twice by two workers, and "Lost your card?" answers alike for
known and unknown addresses."""
from __future__ import annotations

import datetime as dt
import re
import threading
from collections import Counter
from email import policy
from email.parser import BytesParser

import pytest
import time_machine

from portal import create_app
from portal.extensions import db
from portal.models import LoyaltyCard, MailOutbox, SignInLink
from portal.services import clock, sign_in
from portal.services.mail.worker import MailWorker
from tests.conftest import free_port
from tests.mail_support import SmtpServer, link_of, parts, smtp_config

from support import csrf_from, run_workers

from .conftest import enrol

pytestmark = pytest.mark.timeout(90)

CARD_FIELDS = ("card_number", "card_url", "pkpass_url", "google_save_url", "public_token", "id")


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def app_config(request, smtp_port):
    return {"ENROLL_MIN_FORM_SECONDS": 0, **smtp_config(smtp_port), "MAIL_RETRY_BASE_SECONDS": 60,
            "MAIL_RETRY_MAX_SECONDS": 600, **getattr(request, "param", {})}


@pytest.fixture
def smtp(smtp_port):
    with SmtpServer(smtp_port) as server:
        yield server


@pytest.fixture
def vendor(factories):
    return factories.vendor("Café Am Eck", locale="fr")


@pytest.fixture
def program(factories, vendor):
    return factories.program(vendor, name="Kaffiskaart", stamps_required=8, reward_text="e Kaffi")


def _outbox():
    db.session.rollback()
    return db.session.scalars(db.select(MailOutbox).order_by(MailOutbox.id)).all()


def _cards():
    db.session.rollback()
    return db.session.scalars(db.select(LoyaltyCard).order_by(LoyaltyCard.id)).all()


def _assert_reveals_nothing(text: str, card: LoyaltyCard) -> None:
    assert card.public_token not in text
    assert card.card_number not in text and card.card_number[:3] + " " + card.card_number[3:6] not in text
    assert "/c/" not in text and ".pkpass" not in text and "pay.google" not in text


def _open(client, link: str):
    """What a phone does with the link: GET shows the button, its POST uses the link."""
    path = link.split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path)
    if page.status_code != 200:
        return page
    return client.post("/" + path, data={"csrf_token": csrf_from(page.get_data(as_text=True))})


# --- repeat enrolment --------------------------------------------------------------------------------------------

def test_repeat_enrolment_by_email_sends_a_link_that_opens_the_card_once(client, app, program, smtp):
    first = enrol(client, program.slug, name="Léa", email="lea@example.lu", locale="lb")
    assert first.status_code == 303
    (card,) = _cards()

    stranger = app.test_client()
    again = enrol(stranger, program.slug, name="Someone", email="LEA@example.lu")
    html = again.get_data(as_text=True)
    assert again.status_code == 200, html
    assert "Location" not in again.headers
    assert "Check your email" in html
    _assert_reveals_nothing(html, card)
    assert len(_cards()) == 1
    (row,) = _outbox()
    assert row.to_address == "lea@example.lu" and row.card_id == card.id and row.locale == "lb"

    result = MailWorker(app).run_once()
    assert (result.sent, result.failed) == (1, 0)
    (message,) = smtp.messages
    assert message["To"] == "lea@example.lu" and message["Message-ID"] == row.message_id
    assert "Café Am Eck" in message["From"] and "cards@loyalty.example.lu" in message["From"]
    link = link_of(message)
    assert card.public_token not in link

    phone = app.test_client()
    opened = _open(phone, link)
    assert opened.status_code == 303 and opened.headers["Location"].endswith(f"/c/{card.public_token}")
    page = phone.get(opened.headers["Location"])
    assert page.status_code == 200 and card.customer_name in page.get_data(as_text=True)
    # Once only: a second phone (or a second tap) is refused, on GET and on POST.
    again_open = _open(app.test_client(), link)
    assert again_open.status_code == 410
    assert "no longer works" in again_open.get_data(as_text=True) or "Dëse Link" in again_open.get_data(as_text=True)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    assert phone.post(path, data={"csrf_token": csrf_from(phone.get(f"/p/{program.slug}").get_data(as_text=True))}
                      ).status_code == 410


def test_repeat_enrolment_with_only_a_phone_says_ask_at_the_till(client, program, smtp):
    enrol(client, program.slug, name="Jos", phone="621 555 111")
    (card,) = _cards()
    again = enrol(client, program.slug, phone="+352 621 555 111", email="thief@example.com")
    html = again.get_data(as_text=True)
    assert again.status_code == 200 and 'data-outcome="ask_at_till"' in html
    _assert_reveals_nothing(html, card)
    assert len(_cards()) == 1 and _outbox() == []


def test_api_repeat_enrolment_answers_202_without_any_card_field(client, app, program, smtp):
    url = f"/api/v1/loyalty/programs/{program.slug}/enroll"
    created = client.post(url, json={"name": "Léa", "email": "lea@example.lu", "consent": True})
    assert created.status_code == 201 and created.json["card_url"]
    phone_only = client.post(url, json={"phone": "621 555 222", "consent": True})
    assert phone_only.status_code == 201

    by_email = client.post(url, json={"email": "Lea@Example.lu", "consent": True})
    by_phone = client.post(url, json={"phone": "+352621555222", "consent": True})
    assert (by_email.status_code, by_email.json) == (202, {"status": "link_sent"})
    assert (by_phone.status_code, by_phone.json) == (202, {"status": "ask_at_till"})
    for response in (by_email, by_phone):
        for card in _cards():
            _assert_reveals_nothing(response.get_data(as_text=True), card)
    assert len(_cards()) == 2
    assert [r.to_address for r in _outbox()] == ["lea@example.lu"]
    MailWorker(app).run_once()
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("app_config", [{"MAIL_LINKS_PER_CARD_PER_HOUR": 2}], indirect=True)
def test_a_stranger_cannot_flood_a_customers_inbox(client, app, program, smtp):
    url = f"/api/v1/loyalty/programs/{program.slug}/enroll"
    client.post(url, json={"email": "lea@example.lu", "consent": True})
    answers = [client.post(url, json={"email": "lea@example.lu", "consent": True}) for _ in range(5)]
    assert {(r.status_code, r.json["status"]) for r in answers} == {(202, "link_sent")}  # the same answer
    assert len(_outbox()) == 2


# --- the link ----------------------------------------------------------------------------------------------------

def test_an_expired_link_is_refused_and_offers_a_new_one(client, app, program, smtp):
    start = dt.datetime.now(dt.timezone.utc)
    with time_machine.travel(start, tick=False):
        enrol(client, program.slug, email="lea@example.lu", locale="de")
        enrol(client, program.slug, email="lea@example.lu")
        MailWorker(app).run_once()
    link = link_of(smtp.messages[0])
    with time_machine.travel(start + dt.timedelta(minutes=sign_in.EMAIL_MINUTES, seconds=1), tick=False):
        refused = _open(app.test_client(), link)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 410
    assert '<html lang="de">' in html  # the customer's language
    assert f"/p/{program.slug}/lost" in html
    (card,) = _cards()
    _assert_reveals_nothing(html, card)
    db.session.rollback()
    assert db.session.scalar(db.select(SignInLink.used_at)) is None


def test_a_mail_scanner_fetching_the_link_does_not_use_it(client, app, program, smtp):
    enrol(client, program.slug, email="lea@example.lu")
    enrol(client, program.slug, email="lea@example.lu")
    MailWorker(app).run_once()
    link = link_of(smtp.messages[0])
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    for _ in range(3):
        scanned = app.test_client().get(path)
        assert scanned.status_code == 200 and "Open my card" in scanned.get_data(as_text=True)
        assert scanned.headers["Cache-Control"] == "no-store"
        assert scanned.headers["Referrer-Policy"] == "no-referrer"
    # A POST without the form's CSRF token (a cross-site form) is refused and does not use the link up.
    assert app.test_client().post(path).status_code == 400
    assert _open(app.test_client(), link).status_code == 303


def test_only_the_hash_of_a_link_is_stored(client, app, program, smtp):
    enrol(client, program.slug, email="lea@example.lu")
    enrol(client, program.slug, email="lea@example.lu")
    MailWorker(app).run_once()
    token = link_of(smtp.messages[0]).rsplit("/", 1)[1]
    db.session.rollback()
    (link,) = db.session.scalars(db.select(SignInLink)).all()
    assert link.token_hash == sign_in.token_hash(token) and link.via == "email"
    assert link.expires_at - link.created_at == dt.timedelta(minutes=30)
    dump = "\n".join(str(v) for row in db.session.execute(db.select(MailOutbox)).all() for v in row[0].__dict__.values())
    assert token not in dump


def test_two_simultaneous_uses_of_one_link_open_the_card_once(app, program, factories, smtp):
    card = factories.card(program, email="lea@example.lu")
    assert sign_in.send_link(card)
    db.session.commit()
    MailWorker(app).run_once()
    link = link_of(smtp.messages[0])
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    clients = [app.test_client() for _ in range(6)]
    tokens = [csrf_from(c.get(path).get_data(as_text=True)) for c in clients]
    results = []
    barrier = threading.Barrier(len(clients))

    def use(c, t):
        with app.app_context():
            barrier.wait()
            results.append(c.post(path, data={"csrf_token": t}).status_code)

    threads = [threading.Thread(target=use, args=pair) for pair in zip(clients, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert Counter(results) == Counter({303: 1, 410: len(clients) - 1})


# --- delivery ----------------------------------------------------------------------------------------------------

def test_smtp_down_then_up_delivers_once(app, program, factories, smtp_port):
    card = factories.card(program, email="lea@example.lu")
    sign_in.send_link(card)
    db.session.commit()
    worker = MailWorker(app)
    down = worker.run_once()
    assert (down.sent, down.failed) == (0, 1)
    (row,) = _outbox()
    assert row.attempts == 1 and row.delivered_at is None and row.available_at > clock.now()
    assert "Connection" in row.last_error or "refused" in row.last_error.lower()
    with SmtpServer(smtp_port) as server:
        assert worker.run_once().claimed == 0  # not due yet: backing off
        with time_machine.travel(row.available_at + dt.timedelta(seconds=1), tick=False):
            up = worker.run_once()
            assert worker.run_once().claimed == 0
        assert (up.sent, up.failed) == (1, 0)
        assert [m["Message-ID"] for m in server.messages] == [row.message_id]
    (row,) = _outbox()
    assert row.delivered_at is not None and row.last_error is None
    assert row.to_address == ""  # done: the outbox forgets the address


def test_a_card_erased_before_its_email_is_sent_gets_no_email(client, app, program, factories, smtp):
    card = factories.card(program, email="lea@example.lu")
    sign_in.send_link(card)
    db.session.commit()
    page = client.get(f"/c/{card.public_token}/delete")
    client.post(f"/c/{card.public_token}/delete", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    result = MailWorker(app).run_once()
    assert (result.sent, result.skipped) == (0, 1) and smtp.messages == []
    (row,) = _outbox()
    assert row.delivered_at is not None and row.to_address == "" and "erased" in row.last_error


def test_two_workers_never_send_one_mail_twice(app, program, factories, smtp, app_config, database_url):
    cards = [factories.card(program, email=f"c{i}@example.lu") for i in range(20)]
    for card in cards:
        sign_in.send_link(card)
    db.session.commit()
    errors = run_workers(lambda: create_app({**app.config, **app_config, "DATABASE_URL": database_url}),
                         MailWorker, rounds=15)
    assert not errors, errors
    ids = Counter(m["Message-ID"] for m in smtp.messages)
    assert len(ids) == 20 and set(ids.values()) == {1}, ids
    assert all(r.delivered_at is not None for r in _outbox())
    assert set(r.claimed_by for r in _outbox()) <= {"w0", "w1"}


SUBJECTS = {"en": "Your loyalty card at Café Am Eck", "fr": "Votre carte de fidélité chez Café Am Eck",
            "de": "Ihre Treuekarte bei Café Am Eck", "lb": "Är Treiekaart bei Café Am Eck"}
BODY = {"en": "It works once, for 30 minutes", "fr": "Il fonctionne une seule fois, pendant 30 minutes",
        "de": "Er funktioniert einmal, 30 Minuten lang", "lb": "E funktionéiert eemol, 30 Minutten laang"}


@pytest.mark.parametrize("locale", ["en", "fr", "de", "lb"])
def test_the_email_speaks_the_cards_language(app, program, factories, smtp, locale):
    card = factories.card(program, email=f"{locale}@example.lu", locale=locale)
    sign_in.send_link(card)
    db.session.commit()
    MailWorker(app).run_once()
    (message,) = smtp.messages
    assert message["Subject"] == SUBJECTS[locale]
    assert message["Content-Language"] == locale
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert BODY[locale] in text and BODY[locale] in html
    assert f'<html lang="{locale}">' in html
    assert "Café Am Eck" in text


def test_without_smtp_the_mail_goes_to_instance_mail_and_the_log(app, program, factories, caplog):
    for key in ("SMTP_HOST", "SMTP_PORT"):
        app.config.pop(key)
    card = factories.card(program, email="lea@example.lu")
    sign_in.send_link(card)
    db.session.commit()
    with caplog.at_level("INFO", logger="portal.mail"):
        assert MailWorker(app).run_once().sent == 1
    (path,) = (__import__("pathlib").Path(app.instance_path) / "mail").glob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    link = link_of(message)
    assert link in caplog.text and str(path) in caplog.text
    assert _open(app.test_client(), link).status_code == 303


def test_mail_worker_command(app, program, factories, smtp, runner):
    card = factories.card(program, email="lea@example.lu")
    sign_in.send_link(card)
    db.session.commit()
    result = runner.invoke(args=["loyalty", "mail-worker", "--once", "--json"])
    assert result.exit_code == 0, result.output
    assert '"sent": 1' in result.output
    assert len(smtp.messages) == 1


# --- "Lost your card?" -------------------------------------------------------------------------------------------

def _ask(client, slug, email, ip="198.51.100.7"):
    page = client.get(f"/p/{slug}/lost?lang=en", environ_base={"REMOTE_ADDR": ip})
    assert page.status_code == 200
    return client.post(f"/p/{slug}/lost", data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                                "email": email}, environ_base={"REMOTE_ADDR": ip})


def _without_tokens(html: str) -> str:
    """The page without its CSRF token and the address typed (which it repeats)."""
    html = re.sub(r'"X-CSRFToken": "[^"]+"', "", html)
    html = re.sub(r'name="csrf_token"[^>]*>', "", html)
    return html.replace("unknown@", "@").replace("known@", "@")


def test_lost_card_answers_alike_for_known_and_unknown_addresses(app, program, factories, smtp):
    factories.card(program, email="known@example.lu")
    known = _ask(app.test_client(), program.slug, "known@example.lu")
    unknown = _ask(app.test_client(), program.slug, "unknown@example.lu")
    assert known.status_code == unknown.status_code == 200
    assert "Check your email" in known.get_data(as_text=True)
    assert _without_tokens(known.get_data(as_text=True)) == _without_tokens(unknown.get_data(as_text=True))
    assert [r.to_address for r in _outbox()] == ["known@example.lu"]
    MailWorker(app).run_once()
    assert _open(app.test_client(), link_of(smtp.messages[0])).status_code == 303


def test_lost_card_link_on_the_enrolment_page(client, program):
    html = client.get(f"/p/{program.slug}").get_data(as_text=True)
    assert f'href="/p/{program.slug}/lost"' in html


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True, "RECOVER_RATE_LIMIT": "100 per hour",
                                         "RECOVER_ADDRESS_RATE_LIMIT": "2 per hour"}], indirect=True)
def test_lost_card_is_rate_limited_per_address(app, program, factories):
    factories.card(program, email="lea@example.lu")
    statuses = [_ask(app.test_client(), program.slug, "Lea@example.lu", ip=f"198.51.100.{i}").status_code
                for i in range(1, 4)]
    assert statuses == [200, 200, 429]
    assert _ask(app.test_client(), program.slug, "other@example.lu", ip="198.51.100.9").status_code == 200


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True, "RECOVER_RATE_LIMIT": "2 per hour",
                                         "RECOVER_ADDRESS_RATE_LIMIT": "100 per hour"}], indirect=True)
def test_lost_card_is_rate_limited_per_ip(app, program):
    statuses = [_ask(app.test_client(), program.slug, f"p{i}@example.lu").status_code for i in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize("app_config", [{"APP_ENV": "production", "SMTP_HOST": None}], indirect=True)
def test_in_production_without_smtp_the_worker_refuses_and_the_mail_waits(app, program, factories, runner):
    card = factories.card(program, email="lea@example.lu")
    sign_in.send_link(card)
    db.session.commit()
    result = runner.invoke(args=["loyalty", "mail-worker", "--once"])
    assert result.exit_code == 1 and "SMTP_HOST" in result.output
    assert not (__import__("pathlib").Path(app.instance_path) / "mail").exists()
    (row,) = _outbox()
    assert row.delivered_at is None and row.to_address == "lea@example.lu"


def test_message_ids_stay_unique_when_the_random_module_is_reseeded(app, program, factories):
    """Hypothesis and schemathesis reset ``random``'s state between examples: Message-IDs must not depend on it
    (two enrolments within 10 ms once collided on the unique Message-ID, a 500)."""
    import random

    from portal.services.mail import outbox

    card = factories.card(program, email="lea@example.lu")
    ids = set()
    state = random.getstate()
    try:
        for _ in range(5):
            random.seed(1234)
            ids.add(outbox.enqueue("sign_in", "lea@example.lu", "en", card=card).message_id)
    finally:
        random.setstate(state)  # later tests draw "random" values of their own, not this seed's
    assert len(ids) == 5
