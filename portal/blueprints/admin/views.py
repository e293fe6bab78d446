"""Vendors (create, suspend, reactivate), programs with figures, platform statistics, ledger verification."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ... import storage
from ...extensions import db
from ...forms import ActiveForm, LedgerCheckForm, VendorForm, form_dict, form_errors
from ...models import LoyaltyProgram
from ...services import accounts, ledger, stats
from ...services.errors import ValidationError
from ...services.i18n import LANGUAGE_NAMES, SUPPORTED
from ...services.wallet import certificates
from ...web import render
from ..vendor.helpers import handle_refusal
from . import bp

PAGE = 50


def _vendors_page(status=200, errors=None, values=None):
    return render("admin/index.html", "vendors", status=status, vendors=accounts.list_vendors(),
                  stats=stats.platform_stats(), errors=errors or {}, values=values or {},
                  certificates=certificates.status(),
                  locales=[(code, LANGUAGE_NAMES[code]) for code in SUPPORTED])


@bp.get("/")
def index():
    return _vendors_page()


@bp.post("/vendors")
def vendor_create():
    form = VendorForm()
    data = form_dict(form)
    if not form.validate():
        data.pop("owner_password")
        return _vendors_page(422, form_errors(form), data)
    try:
        vendor, owner = accounts.create_vendor(name=data["name"], owner_email=data["owner_email"],
                                               owner_password=data["owner_password"],
                                               timezone=data["timezone"] or "Europe/Luxembourg",
                                               locale=data["locale"] or "en")
    except ValidationError as error:
        notice = handle_refusal(error)
        errors = notice["fields"]
        if "email" in errors:
            errors["owner_email"] = errors.pop("email")
        if "password" in errors:
            errors["owner_password"] = errors.pop("password")
        data.pop("owner_password")
        return _vendors_page(422, errors or {"name": [notice["message"]]}, data)
    flash(_("%(name)s was created; its owner can log in as %(email)s.", name=vendor.name, email=owner.email),
          "success")
    return redirect(url_for("admin.index"), 303)


@bp.route("/vendors/<int:vendor_id>/active", methods=["GET", "POST"])
def vendor_active(vendor_id):
    vendor = accounts.get_vendor(vendor_id)
    if request.method == "GET":  # the confirmation step before a suspension (the page's "Suspend" leads here)
        return render("confirm.html", title=_("Suspend %(name)s?", name=vendor.name),
                      lines=[_("Its owner and staff can no longer log in, its API keys are refused, and its "
                               "customers' cards and enrolment pages stop working until you reactivate it.")],
                      action=url_for("admin.vendor_active", vendor_id=vendor_id), hidden={"active": "0"},
                      confirm_label=_("Yes, suspend"), cancel=url_for("admin.index"))
    form = ActiveForm()
    if not form.validate():
        abort(400)
    want = form.wanted
    accounts.set_vendor_active(vendor, want)
    if want:
        flash(_("%(name)s is active again.", name=vendor.name), "success")
    else:
        flash(_("%(name)s is suspended: its users and API keys are refused from now on.", name=vendor.name),
              "success")
    return redirect(url_for("admin.index"), 303)


@bp.get("/programs")
def programs():
    page = max(1, request.args.get("page", 1, type=int))
    total = db.session.scalar(select(func.count()).select_from(LoyaltyProgram)) or 0
    rows = db.session.scalars(select(LoyaltyProgram).options(joinedload(LoyaltyProgram.vendor))  # shown per row
                              .order_by(LoyaltyProgram.id).limit(PAGE).offset((page - 1) * PAGE)).all()
    return render("admin/programs.html", programs=rows, figures=stats.program_figures([p.id for p in rows]),
                  page=page, pages=max(1, -(-total // PAGE)), total=total)


@bp.get("/stats")
def platform():
    return render("admin/stats.html", stats=stats.platform_stats())


@bp.route("/ledger", methods=["GET", "POST"])
@storage.read_only  # a long check: on SQLite it must not hold the write lock
def ledger_check():
    report = None
    if request.method == "POST":
        form = LedgerCheckForm()
        if not form.validate():
            abort(400)
        vendor_id = form.vendor_id.data or None
        report = ledger.verify(vendor_id=vendor_id)
    return render("admin/ledger.html", "result", report=report, vendors=accounts.list_vendors())
