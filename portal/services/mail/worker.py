"""The mail worker: delivers the mail outbox, the same way the wallet worker delivers the wallet outbox
(``portal/services/wallet/worker.py``).

1. **Claim** up to ``batch`` due rows in a short transaction and commit: a lease (``claimed_until``/``claimed_by``)
   taken under SQLite's write lock (``BEGIN IMMEDIATE``) or, on PostgreSQL, on rows read ``FOR UPDATE SKIP
   LOCKED``, so two workers never hold one row. A worker that dies leaves rows that become claimable again when
   the lease expires.
2. **Read** the cards the messages are about in another short transaction.
3. **Render and send**, outside any transaction: each message in its row's language, through one SMTP connection
   per round (or into ``instance/mail/`` without ``SMTP_HOST``). The Message-ID was fixed when the row was written.
4. **Record**, only for rows still leased to us: sent rows get ``delivered_at``; a refused recipient (5xx) is given
   up at once; any other failure (server down, 4xx) gets ``attempts + 1`` and ``available_at = now + backoff``.
   A row that is done (sent, given up, or about a card erased meanwhile) forgets its address.

Delivery is at-least-once: a worker that crashes between the SMTP server's "250 OK" and the record step sends the
message again when the lease expires — with the same Message-ID, so it is recognisable as the same message.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import socket
import threading
import uuid

from flask import Flask
from flask_babel import force_locale
from sqlalchemy import and_, select, update
from sqlalchemy.orm import joinedload

from ...extensions import db
from ...models import LoyaltyCard, LoyaltyProgram, MailOutbox
from ...storage.outbox import retry_delay, skip_locked, worker_transaction
from .. import clock
from ..worker_signals import stop_on_signals
from .settings import setting, smtp_configured
from .transport import PermanentFailure, build_message, transport_for

log = logging.getLogger("portal.mail.worker")


@dataclasses.dataclass
class MailJob:
    id: int
    attempts: int
    row: MailOutbox | None = None
    card: LoyaltyCard | None = None
    sent: bool = False
    skipped: str | None = None  # nothing to send (the card was erased meanwhile): done, with this note
    error: str | None = None
    permanent: bool = False


@dataclasses.dataclass
class RoundResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0


def backoff_seconds(attempts: int, app: Flask) -> float:
    """Seconds until a failed row is tried again (``storage.outbox.retry_delay`` with this worker's settings)."""
    return retry_delay(attempts, float(setting("MAIL_RETRY_BASE_SECONDS", app)),
                       float(setting("MAIL_RETRY_MAX_SECONDS", app)))


def render(app: Flask, row: MailOutbox, card: LoyaltyCard | None):
    """(sender name, subject, text, html) of a row, or None when there is nothing to send any more."""
    from .. import sign_in, staff_digest

    renderers = {"sign_in": sign_in.render_mail, "staff_digest": staff_digest.render_mail}
    with app.app_context(), force_locale(row.locale):
        return renderers[row.kind](row, card)


class MailWorker:
    def __init__(self, app: Flask, *, worker_id: str | None = None, batch: int = 50):
        self.app = app
        self.batch = batch
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    # -- database steps ----------------------------------------------------------------------------------------
    def claim(self) -> list[MailJob]:
        lease = dt.timedelta(seconds=float(setting("MAIL_WORKER_LEASE_SECONDS", self.app)))
        with worker_transaction(write=True) as session:
            now = clock.now()
            stmt = (select(MailOutbox.id, MailOutbox.attempts)
                    .where(MailOutbox.delivered_at.is_(None), MailOutbox.available_at <= now,
                           (MailOutbox.claimed_until.is_(None)) | (MailOutbox.claimed_until <= now))
                    .order_by(MailOutbox.available_at, MailOutbox.id).limit(self.batch))
            stmt = skip_locked(stmt, session)
            rows = session.execute(stmt).all()
            if not rows:
                return []
            session.execute(update(MailOutbox).where(MailOutbox.id.in_([r.id for r in rows]))
                            .values(claimed_until=now + lease, claimed_by=self.worker_id))
        return [MailJob(r.id, r.attempts) for r in rows]

    def load(self, jobs: list[MailJob]) -> None:
        with worker_transaction(write=False) as session:
            rows = {r.id: r for r in session.scalars(select(MailOutbox)
                                                     .where(MailOutbox.id.in_([j.id for j in jobs])))}
            card_ids = {r.card_id for r in rows.values() if r.card_id is not None}
            # The mail names the card's program and shop: loaded with the cards, before the session ends.
            found = {c.id: c for c in session.scalars(
                select(LoyaltyCard).where(LoyaltyCard.id.in_(card_ids))
                .options(joinedload(LoyaltyCard.program).joinedload(LoyaltyProgram.vendor)))}
            for job in jobs:
                job.row = rows.get(job.id)
                if job.row is not None and job.row.card_id is not None:
                    job.card = found.get(job.row.card_id)
            session.expunge_all()

    def record(self, jobs: list[MailJob]) -> None:
        with worker_transaction(write=True) as session:
            now = clock.now()
            for job in jobs:
                mine = and_(MailOutbox.id == job.id, MailOutbox.claimed_by == self.worker_id,
                            MailOutbox.delivered_at.is_(None))
                # A row that is done forgets its address: the outbox keeps no personal data it no longer needs.
                if job.sent or job.skipped:
                    values = {"delivered_at": now, "claimed_until": None, "last_error": job.skipped,
                              "to_address": ""}
                else:
                    attempts = job.attempts + 1
                    if job.permanent or attempts >= int(setting("MAIL_MAX_ATTEMPTS", self.app)):
                        log.error("mail %s: giving up after %d attempt(s): %s", job.id, attempts, job.error)
                        values = {"delivered_at": now, "claimed_until": None, "attempts": attempts,
                                  "last_error": f"gave up: {job.error}"[:2000], "to_address": ""}
                    else:
                        values = {"available_at": now + dt.timedelta(seconds=backoff_seconds(attempts, self.app)),
                                  "claimed_until": None, "claimed_by": None, "attempts": attempts,
                                  "last_error": (job.error or "")[:2000]}
                session.execute(update(MailOutbox).where(mine).values(**values))

    # -- sending -----------------------------------------------------------------------------------------------
    def send(self, jobs: list[MailJob]) -> None:
        transport = transport_for(self.app)
        try:
            for index, job in enumerate(jobs):
                if job.row is None:
                    job.skipped = "the row is gone"
                    continue
                try:
                    rendered = render(self.app, job.row, job.card)
                except Exception as exc:  # noqa: BLE001 - a template error must not stop the other messages
                    log.exception("mail %s: rendering failed", job.id)
                    job.error = f"rendering: {type(exc).__name__}: {exc}"[:500]
                    continue
                if rendered is None:
                    job.skipped = "nothing to send: the card was erased or closed"
                    continue
                sender, subject, text, html = rendered
                msg = build_message(message_id=job.row.message_id, created_at=job.row.created_at,
                                    to_address=job.row.to_address, sender_name=sender, subject=subject, text=text,
                                    html=html, locale=job.row.locale, app=self.app)
                try:
                    transport.send(msg)
                except PermanentFailure as exc:
                    job.error, job.permanent = str(exc), True
                except Exception as exc:  # noqa: BLE001 - the server is down, slow or said 4xx: later, all of them
                    job.error = f"{type(exc).__name__}: {exc}"[:500]
                    transport.reset()
                    for later in jobs[index + 1:]:
                        later.error = job.error
                    break
                else:
                    job.sent = True
        finally:
            transport.close()

    # -- rounds ------------------------------------------------------------------------------------------------
    def run_round(self) -> RoundResult:
        result = RoundResult()
        with self.app.app_context():
            jobs = self.claim()
            if not jobs:
                return result
            self.load(jobs)
            db.session.remove()
        result.claimed = len(jobs)
        self.send(jobs)
        with self.app.app_context():
            self.record(jobs)
            db.session.remove()
        for job in jobs:
            if job.sent:
                result.sent += 1
            elif job.skipped:
                result.skipped += 1
            else:
                result.failed += 1
                log.warning("mail %s not sent (attempt %d): %s", job.id, job.attempts + 1, job.error)
        return result

    def run_once(self, max_rounds: int = 1000) -> RoundResult:
        """Send everything that is due now, then return (``mail-worker --once``)."""
        total = RoundResult()
        for _ in range(max_rounds):
            result = self.run_round()
            for field in dataclasses.fields(RoundResult):
                setattr(total, field.name, getattr(total, field.name) + getattr(result, field.name))
            if result.claimed == 0 or (result.sent + result.skipped == 0 and result.claimed < self.batch):
                break
        return total

    def run_forever(self, idle_sleep: float = 1.0) -> None:
        log.info("mail worker %s started (%s)", self.worker_id,
                 "SMTP" if smtp_configured(self.app) else "no SMTP_HOST: writing instance/mail/*.eml")
        while not self._stop.is_set():
            try:
                result = self.run_round()
            except Exception:  # noqa: BLE001 - the database may be restarting: wait and try again
                log.exception("mail worker round failed")
                self._stop.wait(min(30.0, idle_sleep * 5))
                continue
            if result.claimed < self.batch:
                self._stop.wait(idle_sleep)
        log.info("mail worker %s stopped", self.worker_id)

    def install_signal_handlers(self) -> None:
        stop_on_signals(self.stop, "mail worker")
