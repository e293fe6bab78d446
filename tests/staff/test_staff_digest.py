"""The weekly digest: one email per owner in the owner's language, through the mail outbox and the in-process SMTP
server; idempotent per week; a clean shop's owner hears that nothing was found."""
from __future__ import annotations

import json

import pytest
import time_machine
from flask_babel import force_locale, gettext

from portal.extensions import db
from portal.services import accounts
from tests.conftest import free_port
from tests.mail_support import SmtpServer, parts, smtp_config

from .conftest import WEEK, at

MONDAY_AFTER = at(7, 7)  # Monday 07:00 of 2026-W48, when the operator's scheduler runs the command


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def app_config(smtp_port):
    return {**smtp_config(smtp_port), "PUBLIC_BASE_URL": "https://loyalty.example.lu"}


def _run(runner, *args):
    result = runner.invoke(args=["loyalty", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_digest_in_four_languages_sent_once_per_week(planted, clean, runner, smtp_port, app):
    vendor, owner, till = planted
    owners = {"en": vendor.owner}
    for locale in ("fr", "de", "lb"):
        user = accounts.create_user(email=f"owner-{locale}-{vendor.id}@shop.test", password="owner-password-1",
                                    role="owner", vendor=vendor)
        user.locale = locale
        owners[locale] = user
    db.session.commit()
    with SmtpServer(smtp_port) as server, time_machine.travel(MONDAY_AFTER, tick=False):
        queued = _run(runner, "staff-digest")
        assert queued == {"queued": 5, "already": 0, "shops": 2}  # four owners here, one at the clean shop
        assert _run(runner, "staff-digest") == {"queued": 0, "already": 5, "shops": 2}  # idempotent per week
        sent = _run(runner, "mail-worker", "--once")
        assert sent["sent"] == 5
        messages = {m["To"]: m for m in server.messages}
    assert len(messages) == 5
    subjects = set()
    for locale, user in owners.items():
        message = messages[user.email]
        with app.test_request_context(), force_locale(locale):
            want = gettext("Staff signals at %(shop)s, week %(week)s: %(count)s to review", shop=vendor.name,
                           week=WEEK, count=6)
            burst = gettext("%(staff)s stamped %(cards)s different cards within %(seconds)s seconds (from %(at)s).",
                            staff="Dave", cards=6, seconds=40, at="2026-11-19 14:00:00")
        assert message["Subject"] == want and message["Content-Language"] == locale
        text, html = parts(message)
        assert burst in text and "https://loyalty.example.lu/staff/people?week=2026-W47" in text
        assert "Dave" in html and "Carl" in html
        subjects.add(want)
    assert len(subjects) == 4  # four languages, four different subjects
    clean_vendor, *_ = clean
    text, _html = parts(messages[clean_vendor.owner.email])
    assert "No signal this week" in text
