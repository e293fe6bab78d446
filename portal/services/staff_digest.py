"""The weekly staff digest: for every active shop, one email per owner about last week's staff signals, written to
the mail outbox (``loyalty mail-worker`` sends it in the owner's language; without ``SMTP_HOST`` it is written to
``instance/mail/`` and the log). ``loyalty staff-digest`` is run by the operator's scheduler (e.g. Mondays 07:00);
it is idempotent per week: a ``staff_digests`` row per (shop, owner, week) is claimed with ``INSERT … ON CONFLICT
DO NOTHING`` in the same transaction as the outbox row, so a second run — or two at once — sends nothing more."""
from __future__ import annotations

import datetime as dt
import json

from flask import current_app, render_template
from flask_babel import gettext as _
from sqlalchemy import select

from .. import storage
from ..extensions import db
from ..models import MailOutbox, StaffDigest, User, Vendor
from . import clock, staff_signals
from .accounts import actor_for_user
from .mail.outbox import enqueue

MAX_LISTED = 30


def previous_week(tz_name: str) -> dt.date:
    return staff_signals.parse_week(None, tz_name) - dt.timedelta(weeks=1)


def summary(vendor: Vendor, owner: User, monday: dt.date) -> dict:
    """What the digest shows: the week, the shop, per person the actions and signals, and the signals (the first
    ``MAX_LISTED``), as plain figures: the worker words them in the owner's language."""
    actor = actor_for_user(owner)
    week = staff_signals.week_label(monday)
    computed = staff_signals.compute(actor, week)
    _, people = staff_signals.people(actor, week, computed=computed)
    _, signals = computed
    return {"vendor": vendor.name, "week": week, "monday": monday.isoformat(),
            "sunday": (monday + dt.timedelta(days=6)).isoformat(), "people": people,
            "signals": [{"kind": s.kind, "staff_name": s.staff_name, "figures": s.figures,
                         "reviewed": s.review is not None} for s in signals[:MAX_LISTED]],
            "total": len(signals), "unreviewed": sum(1 for s in signals if s.review is None)}


def queue_week(week: str | None = None) -> dict:
    """Write the digests of ``week`` (default: each shop's previous week) that were not written yet. Returns
    counts: queued, already (written by an earlier run), shops."""
    result = {"queued": 0, "already": 0, "shops": 0}
    vendors = list(db.session.scalars(select(Vendor).where(Vendor.active.is_(True)).order_by(Vendor.id)))
    table = StaffDigest.__table__
    for vendor in vendors:
        monday = staff_signals.parse_week(week, vendor.timezone) if week else previous_week(vendor.timezone)
        owners = list(db.session.scalars(select(User).where(User.vendor_id == vendor.id, User.role == "owner",
                                                            User.active.is_(True)).order_by(User.id)))
        if not owners:
            continue
        result["shops"] += 1
        figures = summary(vendor, owners[0], monday)  # the same figures for every owner of the shop
        for owner in owners:
            claimed = db.session.execute(
                storage.dialect_insert(table).values(vendor_id=vendor.id, user_id=owner.id, week_start=monday,
                                                     summary=json.dumps(figures), created_at=clock.now())
                .on_conflict_do_nothing(index_elements=["vendor_id", "user_id", "week_start"])
                .returning(table.c.id)).scalar()
            if claimed is None:
                result["already"] += 1
                continue
            row = enqueue("staff_digest", owner.email, owner.locale or vendor.locale or "en")
            db.session.execute(table.update().where(table.c.id == claimed).values(mail_outbox_id=row.id))
            result["queued"] += 1
    return result


def render_mail(row: MailOutbox, card=None):
    """(sender name, subject, text, html) of a digest, in the current (the row's) language; None if its digest
    row is gone (the shop was deleted)."""
    from ..storage.outbox import worker_transaction

    with worker_transaction(write=False) as session:
        digest = session.scalar(select(StaffDigest).where(StaffDigest.mail_outbox_id == row.id))
        data = json.loads(digest.summary) if digest is not None else None
    if data is None:
        return None
    for item in data["signals"]:
        item["label"] = str(staff_signals.KIND_LABELS.get(item["kind"], item["kind"]))
        item["explanation"] = staff_signals.explain(item["kind"], item["staff_name"], item["figures"])
    base = current_app.config.get("PUBLIC_BASE_URL", "").rstrip("/")
    context = {"d": data, "url": f"{base}/staff/people?week={data['week']}", "lang": row.locale}
    subject = _("Staff signals at %(shop)s, week %(week)s: %(count)s to review", shop=data["vendor"],
                week=data["week"], count=data["unreviewed"])
    return (data["vendor"], subject, render_template("mail/staff_digest.txt", subject=subject, **context),
            render_template("mail/staff_digest.html", subject=subject, **context))
