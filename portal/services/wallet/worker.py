"""The wallet worker: delivers the wallet outbox to Apple (APNs pushes) and Google (LoyaltyObject updates).

One round:

1. **Claim** up to ``batch`` due rows in a short transaction of its own and commit. Claims are serialised:
   on PostgreSQL by a transaction-level advisory lock (``SELECT … FOR UPDATE SKIP LOCKED`` as well), on SQLite by
   the database's write lock (``BEGIN IMMEDIATE``). A claim is a lease (``claimed_until``/``claimed_by``): a
   worker that dies leaves rows that become claimable again when the lease expires, so a restart loses nothing.
   Rows of a card whose other rows another worker holds are left for the next round, so a card is delivered by
   one worker at a time (its Google object inserted once, its changes in order).
2. **Read** what the messages need (cards, programs, device registrations) in another short transaction.
3. **Send**, outside any database transaction: rows are coalesced per card (three stamps in a row = one push);
   every registered device of the card's pass gets one APNs push (one reused HTTP/2 connection); the card's
   Google LoyaltyObject is PATCHed (or inserted, after lazily ensuring its program's LoyaltyClass).
4. **Record** the outcome in a last short transaction, only for rows still leased to us: delivered rows get
   ``delivered_at``; failed ones ``attempts + 1``, ``last_error`` and ``available_at = now + backoff``
   (exponential, capped, with jitter); push tokens APNs calls gone (410) are deleted; a new Google object id is
   stored on the card.

Delivery is at-least-once: a worker that crashes after sending and before recording causes a repeat push when
the lease expires, which Wallet handles (it asks which passes changed and gets a 304).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections import OrderedDict

from flask import Flask
from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.orm import aliased, joinedload

from ...extensions import db
from ...models import AppleDeviceRegistration, LoyaltyCard, LoyaltyProgram, ProgramLocation, RetiredCard, WalletOutbox
from ...storage.outbox import retry_delay, serialise_claims, skip_locked, worker_transaction
from .. import clock
from ..worker_signals import stop_on_signals
from .. import messages
from . import google_objects, health
from .settings import apple_configured, google_configured, setting

log = logging.getLogger("portal.wallet.worker")

#: The PostgreSQL advisory lock key that serialises claims ("wlt1").
CLAIM_LOCK = 0x776C7431


@dataclasses.dataclass
class CardJob:
    card_id: int
    row_ids: list[int]
    attempts: int
    card: LoyaltyCard | None = None
    registrations: list[tuple[int, str]] = dataclasses.field(default_factory=list)  # (registration id, push token)
    apple_error: str | None = None
    google_error: str | None = None
    gone_registrations: list[int] = dataclasses.field(default_factory=list)
    google_object_id: str | None = None
    reasons: set[str] = dataclasses.field(default_factory=set)
    #: (Apple serial, Google object id) of the card's retired identities, when a row says ``retired``
    retired: list[tuple[str, str | None]] = dataclasses.field(default_factory=list)
    #: the program's shop locations (the Google class's merchantLocations)
    locations: list = dataclasses.field(default_factory=list)
    #: Messages to pass holders waiting for this card (services/messages.py), Google notifications it used in the
    #: last 24 h, Apple pushes sent this round (also pass health's last push), and the deliveries done: (id, Google
    #: mode).
    messages: list[dict] = dataclasses.field(default_factory=list)
    notifications_used: int = 0
    apple_pushes: int = 0
    messages_done: list[tuple[int, str | None]] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.apple_error is None and self.google_error is None


@dataclasses.dataclass
class RoundResult:
    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    pushes: int = 0
    google_updates: int = 0


def backoff_seconds(attempts: int, app: Flask) -> float:
    """Seconds until a failed row is tried again (``storage.outbox.retry_delay`` with this worker's settings)."""
    return retry_delay(attempts, float(setting("WALLET_RETRY_BASE_SECONDS", app)),
                       float(setting("WALLET_RETRY_MAX_SECONDS", app)))


class WalletWorker:
    """Delivers the outbox for one application. Reuses one APNs client and one Google client."""

    def __init__(self, app: Flask, *, worker_id: str | None = None, batch: int = 100):
        self.app = app
        self.batch = batch
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._apns = None
        self._google = None
        self._ensured_classes: dict[str, object] = {}
        self._stop = threading.Event()
        self._miss_you_at: dt.datetime | None = None

    # -- clients ---------------------------------------------------------------------------------------------
    def apns(self):
        if self._apns is None:
            from .apns import ApnsClient

            c = self.app.config
            ca_file = setting("APNS_CA_FILE", self.app)
            self._apns = ApnsClient(c["APNS_URL"], c["APPLE_PASS_CERT"], c["APPLE_PASS_KEY"],
                                    c.get("APPLE_PASS_KEY_PASSWORD"), verify=ca_file or True)
        return self._apns

    def google(self):
        if self._google is None:
            from .google import GoogleWalletClient

            c = self.app.config
            self._google = GoogleWalletClient(c["GOOGLE_SERVICE_ACCOUNT_FILE"], c["GOOGLE_WALLET_API_URL"])
        return self._google

    def close(self) -> None:
        for client in (self._apns, self._google):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001
                    log.debug("closing a wallet client failed", exc_info=True)
        self._apns = self._google = None

    def stop(self) -> None:
        self._stop.set()

    # -- database steps ----------------------------------------------------------------------------------------
    def claim(self) -> list[CardJob]:
        """Lease up to ``batch`` due rows to this worker; commit; return them grouped per card."""
        lease = dt.timedelta(seconds=float(setting("WALLET_WORKER_LEASE_SECONDS", self.app)))
        with worker_transaction(write=True) as session:
            # One claimer at a time (until this transaction commits): the "no other row of the card in flight"
            # test below must see every claim committed before it. Row locks alone do not make it so: two
            # workers could each claim another pending row of one card in the same instant and send that card
            # twice in parallel (seen: a Google object inserted twice).
            serialise_claims(session, CLAIM_LOCK)
            now = clock.now()
            busy = aliased(WalletOutbox)
            in_flight = exists().where(busy.card_id == WalletOutbox.card_id, busy.delivered_at.is_(None),
                                       busy.claimed_until > now, busy.id != WalletOutbox.id)
            stmt = (select(WalletOutbox.id, WalletOutbox.card_id, WalletOutbox.attempts, WalletOutbox.reason)
                    .where(WalletOutbox.delivered_at.is_(None), WalletOutbox.available_at <= now,
                           (WalletOutbox.claimed_until.is_(None)) | (WalletOutbox.claimed_until <= now),
                           ~in_flight)
                    .order_by(WalletOutbox.available_at, WalletOutbox.id).limit(self.batch))
            stmt = skip_locked(stmt, session, of=WalletOutbox)
            rows = session.execute(stmt).all()
            if not rows:
                return []
            session.execute(update(WalletOutbox).where(WalletOutbox.id.in_([r.id for r in rows]))
                            .values(claimed_until=now + lease, claimed_by=self.worker_id))
        jobs: OrderedDict[int, CardJob] = OrderedDict()
        for row in rows:
            job = jobs.setdefault(row.card_id, CardJob(row.card_id, [], 0))
            job.row_ids.append(row.id)
            job.reasons.add(row.reason)
            job.attempts = max(job.attempts, row.attempts)
        return list(jobs.values())

    def load(self, jobs: list[CardJob]) -> None:
        """Read the cards (with program, vendor, rewards) and their device registrations; then end the read."""
        with worker_transaction(write=False) as session:
            ids = [j.card_id for j in jobs]
            # A pass shows the card's program, shop and reward catalog: loaded with the cards, before the session ends.
            found = {c.id: c for c in session.scalars(
                select(LoyaltyCard).where(LoyaltyCard.id.in_(ids))
                .options(joinedload(LoyaltyCard.program).joinedload(LoyaltyProgram.vendor),
                         joinedload(LoyaltyCard.program).selectinload(LoyaltyProgram.rewards)))}
            retiring = [j.card_id for j in jobs if "retired" in j.reasons]
            retired: dict[int, list[tuple[str, str | None]]] = {}
            if retiring:  # a replacement or merge: every old identity of the card is voided (again)
                for row in session.execute(select(RetiredCard.card_id, RetiredCard.apple_serial,
                                                  RetiredCard.google_object_id)
                                           .where(RetiredCard.card_id.in_(retiring))
                                           .order_by(RetiredCard.id)):
                    retired.setdefault(row.card_id, []).append((row.apple_serial, row.google_object_id))
            pass_type = self.app.config.get("APPLE_PASS_TYPE_ID")
            regs: dict[str, list[tuple[int, str]]] = {}
            serials = [c.apple_serial for c in found.values()]
            serials += [serial for identities in retired.values() for serial, _ in identities]
            if serials and pass_type:
                for reg in session.execute(select(AppleDeviceRegistration.id, AppleDeviceRegistration.serial_number,
                                                  AppleDeviceRegistration.push_token)
                                           .where(AppleDeviceRegistration.serial_number.in_(serials),
                                                  AppleDeviceRegistration.pass_type_id == pass_type)
                                           .order_by(AppleDeviceRegistration.id)):
                    regs.setdefault(reg.serial_number, []).append((reg.id, reg.push_token))
            locations: dict[int, list] = {}
            program_ids = {c.program_id for c in found.values()}
            if program_ids:
                for loc in session.scalars(select(ProgramLocation).where(ProgramLocation.program_id.in_(program_ids))
                                           .order_by(ProgramLocation.program_id, ProgramLocation.position)):
                    locations.setdefault(loc.program_id, []).append(loc)
            waiting = messages.pending_for(session, ids)
            used = messages.notifications_used(session, [i for i in waiting if found.get(i) is not None
                                                         and found[i].google_object_id], clock.now())
            for job in jobs:
                job.messages = waiting.get(job.card_id, [])
                job.notifications_used = used.get(job.card_id, 0)
                job.card = found.get(job.card_id)
                job.locations = locations.get(job.card.program_id, []) if job.card is not None else []
                if job.card is not None:
                    job.retired = retired.get(job.card_id, [])
                    job.registrations = regs.get(job.card.apple_serial, []) + [
                        reg for serial, _ in job.retired for reg in regs.get(serial, [])]
            session.expunge_all()

    def record(self, jobs: list[CardJob]) -> None:
        with worker_transaction(write=True) as session:
            now = clock.now()
            mine = and_(WalletOutbox.claimed_by == self.worker_id, WalletOutbox.delivered_at.is_(None))
            messages.record_sent(session, [(delivery_id, mode, job.apple_pushes)
                                           for job in jobs for delivery_id, mode in job.messages_done])
            gone = [rid for job in jobs for rid in job.gone_registrations]
            if gone:
                session.execute(delete(AppleDeviceRegistration).where(AppleDeviceRegistration.id.in_(gone)))
            for job in jobs:
                if job.apple_pushes or (job.registrations and job.apple_error):
                    health.record_push(session, job.card_id, job.apple_error or "ok", len(job.gone_registrations))
                if job.google_object_id and job.card is not None and job.card.google_object_id is None:
                    session.execute(update(LoyaltyCard).where(LoyaltyCard.id == job.card_id,
                                                              LoyaltyCard.google_object_id.is_(None),
                                                              # not replaced since it was read
                                                              LoyaltyCard.apple_serial == job.card.apple_serial)
                                    .values(google_object_id=job.google_object_id))
                where = and_(WalletOutbox.id.in_(job.row_ids), mine)
                if job.ok:
                    session.execute(update(WalletOutbox).where(where).values(
                        delivered_at=now, claimed_until=None, last_error=None))
                    continue
                attempts = job.attempts + 1
                error = "; ".join(e for e in (job.apple_error, job.google_error) if e)[:2000]
                if attempts >= int(setting("WALLET_MAX_ATTEMPTS", self.app)):
                    log.error("wallet: giving up on card %s after %d attempts: %s", job.card_id, attempts, error)
                    values = {"delivered_at": now, "claimed_until": None, "attempts": attempts,
                              "last_error": f"gave up: {error}"}
                else:
                    values = {"available_at": now + dt.timedelta(seconds=backoff_seconds(attempts, self.app)),
                              "claimed_until": None, "claimed_by": None, "attempts": attempts,
                              "last_error": error}
                session.execute(update(WalletOutbox).where(where).values(**values))

    # -- sending -----------------------------------------------------------------------------------------------
    def send_apple(self, job: CardJob) -> int:
        if not job.registrations or not apple_configured(self.app):
            return 0
        topic = self.app.config["APPLE_PASS_TYPE_ID"]
        client = self.apns()
        failures = []
        sent = 0
        for reg_id, push_token in job.registrations:
            result = client.push(push_token, topic)
            sent += 1
            if result.ok:
                continue
            if result.gone:
                job.gone_registrations.append(reg_id)
                continue
            failures.append(f"APNs {result.status} {result.reason or ''}".strip())
        if failures:
            job.apple_error = f"{len(failures)} of {len(job.registrations)} pushes failed: {failures[0]}"
        return sent

    def _ensure_class(self, program, locations=()) -> None:
        with self.app.app_context():
            body = google_objects.class_body(program, self.app, list(locations))
        known = self._ensured_classes.get(body["id"])
        if known == program.updated_at:
            return
        client = self.google()
        if known is None:
            # Inserted if missing; one made by an earlier process may show an older design: then PATCH it.
            existing = client.ensure_class(body)
            if any(existing.get(key) != value for key, value in body.items() if key != "reviewStatus"):
                client.patch_class(body["id"], body)
        else:
            client.patch_class(body["id"], body)
        self._ensured_classes[body["id"]] = program.updated_at

    def send_google(self, job: CardJob) -> bool:
        if not google_configured(self.app) or job.card is None:
            return False
        from .google import GoogleWalletError

        card = job.card
        if job.reasons == {"message"} and card.google_object_id and job.messages:
            # Only a message: the object is as the last update left it, so the message is added to it without
            # PATCHing it first (one call per card instead of two). An object deleted meanwhile is recreated below.
            if self.send_messages(job, card.google_object_id, missing_ok=True):
                job.google_object_id = card.google_object_id
                return True
        try:
            self._ensure_class(card.program, job.locations)
            with self.app.app_context():
                body = google_objects.object_body(card, self.app)
            try:
                self.google().upsert_object(body)
            except GoogleWalletError as exc:
                if exc.status != 400 or "class" not in exc.message.lower():
                    raise
                self._ensured_classes.pop(google_objects.class_id(card.program, self.app), None)
                self._ensure_class(card.program, job.locations)  # the class vanished (deleted in the console): recreate it
                self.google().upsert_object(body)
        except GoogleWalletError as exc:
            job.google_error = f"Google {exc.status}: {exc.message}"[:500]
            return False
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable key file: retry later, keep running
            log.exception("wallet: Google update of card %s failed", job.card_id)
            job.google_error = f"Google: {type(exc).__name__}: {exc}"[:500]
            return False
        job.google_object_id = body["id"]
        self.send_messages(job, body["id"])
        return True

    def send_messages(self, job: CardJob, object_id: str, *, missing_ok: bool = False) -> bool:
        """Google's ``addMessage`` for each message waiting: ``TEXT_AND_NOTIFY`` while the pass had fewer than 3
        notifying messages in the last 24 h, else ``TEXT`` (added silently: Google would refuse a 4th notification
        with a quota error). A quota error we did not expect (another sender) is answered with the silent kind."""
        from .google import GoogleWalletError

        for delivery in job.messages:
            notify = job.notifications_used < messages.GOOGLE_NOTIFY_LIMIT
            with self.app.app_context():
                body = messages.google_message(delivery, job.card, notify)
            try:
                try:
                    self.google().add_message(object_id, body)
                except GoogleWalletError as exc:
                    if not (notify and exc.status == 429):
                        raise
                    notify = False
                    job.notifications_used = messages.GOOGLE_NOTIFY_LIMIT
                    self.google().add_message(object_id, {**body, "messageType": "TEXT"})
            except GoogleWalletError as exc:
                if missing_ok and exc.not_found:
                    return False  # the object is not there: the caller inserts it, then adds the messages
                job.google_error = f"Google addMessage {exc.status}: {exc.message}"[:500]
                return True
            job.notifications_used += int(notify)
            job.messages_done.append((delivery["id"], "notify" if notify else "silent"))
        return True

    def finish_messages(self, job: CardJob) -> None:
        """Messages of a card without a Google pass (or without Google configured) are done once Apple was
        pushed: the pass the devices fetch carries the latest one."""
        if job.google_error is not None or (google_configured(self.app) and job.card is not None
                                            and job.card.erased_at is None):
            return
        done = {d[0] for d in job.messages_done}
        job.messages_done += [(m["id"], None) for m in job.messages if m["id"] not in done]

    def erase_google(self, job: CardJob) -> bool:
        """GDPR erasure: the card's Google Wallet object loses the customer's name and becomes inactive."""
        card = job.card
        if not google_configured(self.app) or card is None or not card.google_object_id:
            return False
        return self._deactivate(job, card.google_object_id, card.card_number)

    def retire_google(self, job: CardJob) -> int:
        """A replaced or merged card: the Google objects of its old identities become inactive (and nameless).
        An object never created (the worker had not reached it) is simply not there."""
        if not google_configured(self.app) or not job.retired:
            return 0
        with self.app.app_context():
            issuer = google_objects.issuer_id(self.app)
        done = 0
        for serial, object_id in job.retired:
            done += int(self._deactivate(job, object_id or f"{issuer}.{serial}", None))
        return done

    def _deactivate(self, job: CardJob, object_id: str, card_number: str | None) -> bool:
        from .google import GoogleWalletError

        from ..cards import format_card_number

        body = {"state": "INACTIVE"}
        # Without the customer's name; an old identity shows no number either (it was the old one).
        body["accountName"] = format_card_number(card_number) if card_number else "—"
        try:
            self.google().patch_object(object_id, body)
        except GoogleWalletError as exc:
            if exc.not_found:
                return False
            job.google_error = f"Google {exc.status}: {exc.message}"[:500]
            return False
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable key file: retry later, keep running
            log.exception("wallet: Google update of card %s failed", job.card_id)
            job.google_error = f"Google: {type(exc).__name__}: {exc}"[:500]
            return False
        return True

    # -- rounds ------------------------------------------------------------------------------------------------
    def tick(self) -> dict:
        """Release the scheduled messages that are due; every few minutes, queue the "we miss you" nudges
        (services/messages.py). A reading look first, so an idle worker does not take SQLite's write lock."""
        now = clock.now()
        miss_you = self._miss_you_at is None or now - self._miss_you_at >= messages.MISS_YOU_EVERY
        with worker_transaction(write=False) as session:
            due = messages.due_work(session, now, miss_you=miss_you)
        if not due:
            if miss_you:
                self._miss_you_at = now
            return {"released": 0, "miss_you": 0}
        with worker_transaction(write=True) as session:
            done = messages.tick(session, miss_you=miss_you)
        if miss_you:
            self._miss_you_at = now
        return done

    def run_round(self) -> RoundResult:
        result = RoundResult()
        with self.app.app_context():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the deliveries below must not wait for it
                log.exception("wallet: the messages' tick failed")
            jobs = self.claim()
            if not jobs:
                return result
            self.load(jobs)
            db.session.remove()
        result.claimed = sum(len(j.row_ids) for j in jobs)
        live = [job for job in jobs if job.card is not None]  # a card that is gone: nothing to tell any wallet
        # Apple and Google are independent: the round's APNs pushes run in a second thread while this one talks
        # to Google, so a round takes about the longer of the two instead of their sum. Each side writes only its
        # own fields of a job (apple_* / google_*, messages_done); finish_messages runs after both.
        pusher = threading.Thread(target=self._push_all, args=(live, result), name="wallet-apns", daemon=True)
        pusher.start()
        try:
            for job in live:
                result.google_updates += self.retire_google(job)
                if job.card.erased_at is not None:
                    result.google_updates += int(self.erase_google(job))
                    continue
                result.google_updates += int(self.send_google(job))
        finally:
            pusher.join()
        for job in live:
            self.finish_messages(job)
        with self.app.app_context():
            self.record(jobs)
            db.session.remove()
        for job in jobs:
            if job.ok:
                result.delivered += len(job.row_ids)
            else:
                result.failed += len(job.row_ids)
                log.warning("wallet: card %s not delivered (attempt %d): %s", job.card_id, job.attempts + 1,
                            "; ".join(e for e in (job.apple_error, job.google_error) if e))
        return result

    def _push_all(self, jobs: list[CardJob], result: RoundResult) -> None:
        for job in jobs:
            try:
                # Erased cards and old identities too: their devices then fetch a voided pass.
                job.apple_pushes = self.send_apple(job)
                result.pushes += job.apple_pushes
            except Exception as exc:  # noqa: BLE001 - e.g. certificate files unreadable
                log.exception("wallet: APNs delivery for card %s failed", job.card_id)
                job.apple_error = f"APNs: {type(exc).__name__}: {exc}"[:500]
                self._apns = None

    def run_once(self, max_rounds: int = 1000, *, close: bool = True) -> RoundResult:
        """Deliver everything that is due now, then return (``wallet-worker --once``); closes the connections
        unless ``close`` is False."""
        total = RoundResult()
        try:
            for _ in range(max_rounds):
                result = self.run_round()
                for field in dataclasses.fields(RoundResult):
                    setattr(total, field.name, getattr(total, field.name) + getattr(result, field.name))
                if result.claimed == 0 or (result.delivered == 0 and result.claimed < self.batch):
                    break
        finally:
            if close:
                self.close()
        return total

    def run_forever(self, idle_sleep: float = 1.0) -> None:
        log.info("wallet worker %s started", self.worker_id)
        while not self._stop.is_set():
            try:
                result = self.run_round()
            except Exception:  # noqa: BLE001 - the database may be restarting: wait and try again
                log.exception("wallet worker round failed")
                self._stop.wait(min(30.0, idle_sleep * 5))
                continue
            if result.claimed == 0 or result.claimed < self.batch:
                self._stop.wait(idle_sleep)
        self.close()
        log.info("wallet worker %s stopped", self.worker_id)

    def install_signal_handlers(self) -> None:
        stop_on_signals(self.stop, "wallet worker")
