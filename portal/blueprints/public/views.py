"""Customer pages: self-enrolment from the shop's poster (/p/<slug>) and the customer's card (/c/<token>).

No login: the card page is reached by its unguessable ``public_token``. Pages work without JavaScript.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import secrets

import segno
from babel import dates
from flask import Response, abort, current_app, flash, g, redirect, request, url_for
from flask_babel import refresh
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from wtforms import BooleanField, EmailField, HiddenField, SelectField, StringField, TelField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from ...extensions import limiter
from ...services import cards, clock, enrolment, messages, programs, reissue, sign_in
from ...services.errors import DomainError, ValidationError
from ...services.operations import UNDO_NOTE
from ...services.validation import EMAIL_RE
from ...services.i18n import LANGUAGE_NAMES, SUPPORTED, current_locale, normalise_locale
from ...services.wallet import images, links, passes
from ...web import error_page, render
from . import bp

FORM_SALT = "loyalty-enrol-form"
DEFAULT_MIN_FORM_SECONDS = 2.0
DEFAULT_MAX_FORM_SECONDS = 24 * 3600


TOO_LONG = _l("At most %(max)d characters.")


class EnrollForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[Length(max=120, message=TOO_LONG)],
                       render_kw={"autocomplete": "name"})
    email = EmailField(_l("Email"), validators=[Length(max=254, message=TOO_LONG)],
                       render_kw={"autocomplete": "email"})
    phone = TelField(_l("Phone"), validators=[Length(max=32, message=TOO_LONG)], render_kw={"autocomplete": "tel"})
    locale = SelectField(_l("Language of your card"), validate_choice=False,
                         choices=[SelectChoice(c, LANGUAGE_NAMES[c], render_kw={"lang": c}) for c in SUPPORTED])
    consent = BooleanField(_l("I agree that the shop keeps my name and contact details for this loyalty card."))
    # Bot guard: a field people never see (bots fill it) and the signed moment the form was shown.
    website = StringField(_l("Leave this field empty"), render_kw={"autocomplete": "off", "tabindex": "-1"})
    issued = HiddenField()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=FORM_SALT)


def _issue_token(program) -> str:
    """The form's signed stamp: its program, when it was shown, and a nonce that makes it single-use."""
    return _serializer().dumps({"p": program.id, "t": clock.now().timestamp(), "n": secrets.token_urlsafe(16)})


def _bot_guard(form: EnrollForm, program) -> tuple[str | None, str | None, dt.datetime | None]:
    """(None, nonce, when the stamp expires) when the post looks human, else (the message to show, None, None).
    The nonce is used up by the enrolment (``enrolment.consume_form_nonce``), so a form is accepted once."""
    if (form.website.data or "").strip():
        return _("This form could not be accepted. If you filled in every field, please leave the last "
                 "“Leave this field empty” field empty and send it again."), None, None
    max_age = float(current_app.config.get("ENROLL_MAX_FORM_SECONDS", DEFAULT_MAX_FORM_SECONDS))
    min_age = float(current_app.config.get("ENROLL_MIN_FORM_SECONDS", DEFAULT_MIN_FORM_SECONDS))
    unreadable = _("This form could not be checked. Please send it again.")
    try:
        data = _serializer().loads(form.issued.data or "", max_age=int(max_age) + 1)
    except SignatureExpired:
        return _("This form was open for too long. Please check your details and send it again."), None, None
    except BadSignature:
        return unreadable, None, None
    if (not isinstance(data, dict) or data.get("p") != program.id or not isinstance(data.get("t"), (int, float))
            or not isinstance(data.get("n"), str)):
        return unreadable, None, None
    age = clock.now().timestamp() - data["t"]
    if age < min_age:
        return _("That was very fast! Please check your details and send the form again."), None, None
    if age > max_age:
        return _("This form was open for too long. Please check your details and send it again."), None, None
    expires = dt.datetime.fromtimestamp(data["t"], dt.timezone.utc) + dt.timedelta(seconds=max_age + 1)
    return None, data["n"], expires


def _earn_rate(program) -> dict | None:
    """'1.5 points for every €1.00 spent', in the page's locale."""
    if program.is_stamps or not program.points_per_unit:
        return None
    from babel import numbers

    locale = current_locale()
    return {"points": numbers.format_decimal(program.points_per_unit.normalize(), locale=locale),
            "amount": numbers.format_currency(1, program.currency or "EUR", locale=locale)}


def _no_store(response: Response) -> Response:
    """Pages and files that carry a card's secret link or personal data: never cached, never leaked as Referer."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


# --- enrolment ---------------------------------------------------------------------------------------------------

def _slug_key() -> str:
    return "program:" + str((request.view_args or {}).get("slug", ""))


#: Enrolments per program, shared by the poster page and the API (on top of the limit per IP). Only answered
#: enrolments count (a new card, or "check your email"), so junk posts cannot use up a shop's budget.
program_enrol_limit = limiter.shared_limit(lambda: current_app.config["ENROLL_PROGRAM_RATE_LIMIT"],
                                           scope="enrol-program", key_func=_slug_key, methods=["POST"],
                                           deduct_when=lambda response: response.status_code < 400)


@bp.route("/p/<slug>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["ENROLL_RATE_LIMIT"], methods=["POST"])
@program_enrol_limit
def enroll(slug):
    program = programs.get_program_by_slug(slug, rewards=True)  # the poster lists the catalog
    if program.slug != slug and request.method == "GET":
        # A renamed program's old poster: on to its current address (302, not 301: the slug may come back).
        query = request.query_string.decode("latin-1")
        return redirect(url_for("public.enroll", slug=program.slug) + (f"?{query}" if query else ""), 302)
    g.fallback_locale = program.vendor.locale  # after the visitor's own choice and Accept-Language
    refresh()
    form = EnrollForm()
    errors: dict[str, list] = {}
    message = None
    status = 200
    if request.method == "GET":
        form.locale.data = normalise_locale(request.args.get("lang")) or current_locale()
    elif not form.validate_on_submit():  # only the CSRF token and lengths are checked here
        errors = {k: list(v) for k, v in form.errors.items() if k != "csrf_token"}
        message = _("Your form expired. Please send it again.") if "csrf_token" in form.errors else \
            _("Please correct the marked fields.")
        status = 400 if "csrf_token" in form.errors else 422
    elif (guard := _bot_guard(form, program))[0] is not None:
        message, status = guard[0], 400
    elif not form.consent.data:
        errors = {"consent": [_("Please tick this box to get your card.")]}
        message, status = _("Please correct the marked fields."), 422
    else:
        data = {"name": form.name.data, "email": form.email.data, "phone": form.phone.data,
                "locale": normalise_locale(form.locale.data) or current_locale(), "consent": True}
        try:
            result = enrolment.self_enroll(program, data, form_nonce=guard[1], form_expires_at=guard[2])
        except ValidationError as error:
            errors = {k: [str(m) for m in (v if isinstance(v, (list, tuple)) else [v])]
                      for k, v in (error.fields or {}).items()}
            message, status = error.render_message(), error.status
        except DomainError as error:
            message, status = error.render_message(), error.status
        else:
            if not result.created:
                # An email or phone that has a card here: nothing about that card is shown (docs/security.md).
                return _no_store(render("public/link_sent.html", None, program=program, outcome=result.status))
            card = result.card
            g.default_locale = card.locale  # the welcome speaks the language the customer chose for the card
            refresh()
            flash(_("Welcome! Here is your loyalty card. Keep this page: bookmark it or add the card to your "
                    "wallet."), "success")
            return _no_store(redirect(url_for("public.card", token=card.public_token), 303))
    form.issued.data = _issue_token(program)
    form.website.data = ""
    response = render("public/enroll.html", "form", status=status, program=program, form=form, errors=errors,
                      message=message, rewards=[r for r in program.rewards if r.active], earn_rate=_earn_rate(program))
    response.headers["Cache-Control"] = "no-store"  # the form carries a fresh CSRF token and timestamp
    return response


@bp.get("/p/<slug>/theme.css")
def program_theme(slug):
    """The program's colours as CSS variables (the CSP forbids inline styles). Re-emitted from parsed values."""
    program = programs.get_program_by_slug(slug)

    def hex_of(value, default):
        return "#%02x%02x%02x" % images.parse_hex_color(value, default)

    body = (":root{--pc-bg:%s;--pc-fg:%s;--pc-label:%s}\n" % (
        hex_of(program.background_color, (31, 78, 121)), hex_of(program.foreground_color, (255, 255, 255)),
        hex_of(program.label_color, (207, 227, 245))))
    response = Response(body, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/p/<slug>/logo.png")
def program_logo(slug):
    """The program's logo (or the generated stamp) for Google Wallet's class and the page header."""
    program = programs.get_program_by_slug(slug)
    body = images.safe_logo(program.logo_png) or images.google_logo(program.background_color,
                                                                     program.foreground_color)
    response = Response(body, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


# --- the card page -----------------------------------------------------------------------------------------------

def _card(token: str, *, rewards: bool = False):
    card = cards.get_card_by_token(token, rewards=rewards)
    g.default_locale = card.locale  # before Accept-Language: the language the customer chose for the card
    g.fallback_locale = card.program.vendor.locale
    refresh()
    return card


def _history(card) -> list[dict]:
    labels = {
        "stamp_add": _l("Stamp"), "stamp_redeem": _l("Reward redeemed"), "points_earn": _l("Points earned"),
        "points_redeem": _l("Reward redeemed"), "adjustment": _l("Correction"), "void": _l("Cancelled"),
    }
    tz = clock.zone(card.program.vendor.timezone)
    locale = current_locale()
    rows = []
    for tx in cards.recent_transactions(card, limit=10):
        label = labels.get(tx.type, tx.type)
        if tx.type == "void" and tx.note == UNDO_NOTE:
            label = _l("Undone by staff")
        rows.append({"label": label, "delta": tx.delta, "balance_after": tx.balance_after,
                     "when": dates.format_datetime(tx.created_at, "short", tzinfo=tz, locale=locale),
                     "iso": tx.created_at.isoformat()})
    return rows


def _grid_columns(required: int) -> int:
    """Stamps per row: a number that fills the rows evenly (8 → 4 × 2, 12 → 6 × 2), else 5."""
    for columns in (5, 4, 6, 3):
        if required and required % columns == 0 and required // columns <= 4:
            return columns
    return 5


@bp.get("/c/<token>")
def card(token):
    card = _card(token, rewards=True)  # the page lists the catalog, and so does the Google save link's object
    program = card.program
    required = program.stamps_required or 0
    rewards = [r for r in program.rewards if r.active] if not program.is_stamps else []
    context = {
        "card": card, "program": program, "vendor": program.vendor,
        "number": cards.format_card_number(card.card_number),
        "cells": [i < card.stamps for i in range(required)] if program.is_stamps else [],
        "columns": _grid_columns(required),
        "reward_ready": program.is_stamps and required and card.stamps >= required,
        "to_go": max(0, required - card.stamps) if program.is_stamps else 0,
        "rewards": rewards, "history": _history(card), "links": links.for_card(card),
        "message": messages.latest_text(card), "messages_off": messages.opted_out(card.id), "form": FlaskForm(),
    }
    return _no_store(render("public/card.html", None, **context))


@bp.post("/c/<token>/messages")
def card_messages(token):
    """The holder turns the shop's messages off (or on again). The card link is the credential: only its holder
    reaches this page."""
    card = _card(token)
    if not FlaskForm().validate_on_submit():
        abort(400)
    off = request.form.get("messages") == "off"
    messages.set_opt_out(card, off)
    flash(_("You will get no more messages from %(shop)s on this card.", shop=card.program.vendor.name) if off
          else _("Messages from %(shop)s are on again.", shop=card.program.vendor.name), "success")
    return _no_store(redirect(url_for("public.card", token=card.public_token), 303))


@bp.get("/c/<token>/qr.svg")
def card_qr(token):
    """The card's QR code: it encodes the 10-digit card number, which the staff tablet's scanner reads."""
    card = cards.get_card_by_token(token)
    out = io.BytesIO()
    segno.make(card.card_number, error="m", micro=False).save(
        out, kind="svg", scale=8, border=4, xmldecl=False, svgns=True, title=_("Card number"),
        svgclass=None, lineclass=None)
    return _no_store(Response(out.getvalue(), mimetype="image/svg+xml"))


@bp.get("/c/<token>/pass.pkpass")
def card_pass(token):
    if not passes.available():
        abort(404)
    card = passes.card_for_pass(token=token)
    if card is None:
        abort(404)
    from ..api.apple import pass_response

    return _no_store(pass_response(card, attachment=True))


@bp.get("/c/<token>/data.json")
def card_data(token):
    """GDPR: everything we keep about this card, as a JSON download."""
    card = cards.get_card_by_token(token)
    body = json.dumps(cards.export_personal_data(card), ensure_ascii=False, indent=2)
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="loyalty-card-{card.card_number}.json"'
    return _no_store(response)


@bp.route("/c/<token>/delete", methods=["GET", "POST"])
def card_delete(token):
    """GDPR erasure with a confirmation step (POST + CSRF)."""
    card = _card(token)
    form = FlaskForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        program = card.program
        cards.erase_personal_data(card)  # and the wallet worker voids the Apple pass and the Google object
        flash(_("Your personal data was deleted. The old card link no longer works."), "success")
        return _no_store(redirect(url_for("public.erased", slug=program.slug), 303))
    return _no_store(render("public/delete.html", None, card=card, program=card.program, form=form,
                            number=cards.format_card_number(card.card_number)))


@bp.route("/c/<token>/replace", methods=["GET", "POST"])
def card_replace(token):
    """A lost or stolen phone: the card gets a new number, link and wallet passes (confirmation step, POST +
    CSRF). Whoever holds the card link may; the old link, number and passes stop working."""
    card = _card(token)
    form = FlaskForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        card, _retired = reissue.replace_card_by_token(token)
        flash(_("Your card has a new number and a new link: bookmark this page again and add the card to your "
                "wallet again. The old card no longer works."), "success")
        return _no_store(redirect(url_for("public.card", token=card.public_token), 303))
    return _no_store(render("public/replace.html", None, card=card, program=card.program, form=form,
                            number=cards.format_card_number(card.card_number)))


@bp.get("/p/<slug>/deleted")
def erased(slug):
    program = programs.get_program_by_slug(slug)
    g.fallback_locale = program.vendor.locale
    refresh()
    return _no_store(render("public/deleted.html", None, program=program))


# --- sign-in links: "Lost your card?" and the links it sends -----------------------------------------------------

class LostCardForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[Length(max=254, message=TOO_LONG)],
                       render_kw={"autocomplete": "email"})


def _address_key() -> str:
    """The per-address rate limit's key: the address as the service will read it (lower-cased); a post without a
    valid address (it gets a field error) counts against its IP instead of one bucket shared by everybody."""
    email = (request.form.get("email") or "").strip().lower()[:254]
    return "address:" + email if EMAIL_RE.match(email) else "no-address:" + get_remote_address()


@bp.route("/p/<slug>/lost", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RECOVER_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["RECOVER_ADDRESS_RATE_LIMIT"], methods=["POST"], key_func=_address_key)
def lost_card(slug):
    """Ask for a sign-in link by email. The answer is the same whether or not the address has a card here."""
    program = programs.get_program_by_slug(slug)
    g.fallback_locale = program.vendor.locale  # after the visitor's own choice and Accept-Language
    refresh()
    form = LostCardForm()
    errors: dict[str, list] = {}
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            errors = {k: list(v) for k, v in form.errors.items() if k != "csrf_token"}
            if "csrf_token" in form.errors:
                errors["email"] = [_("Your form expired. Please send it again.")]
            status = 400 if "csrf_token" in form.errors else 422
        else:
            try:
                sign_in.request_by_email(program, {"email": form.email.data})
            except ValidationError as error:
                errors = {k: [str(m) for m in v] for k, v in (error.fields or {}).items()}
                status = error.status
            else:
                return _no_store(render("public/link_sent.html", None, program=program, outcome="asked",
                                        email=form.email.data.strip()))
    return _no_store(render("public/lost.html", None, status=status, program=program, form=form, errors=errors))


def _link_page(token: str, card, usable: bool, status: int = 200):
    if card is None:
        return error_page(410, sign_in.SignInLinkInvalid.default_message)
    g.default_locale = card.locale
    refresh()
    return _no_store(render("public/sign_in.html", None, status=status, program=card.program, card=card,
                            usable=usable, token=token, form=FlaskForm()))


@bp.route("/s/<token>", methods=["GET", "POST"])
def sign_in_link(token):
    """A sign-in link. GET only shows an "Open my card" button (mail scanners that fetch links use nothing up);
    the button's POST uses the link and leads to the card page."""
    if request.method == "GET":
        card, usable = sign_in.peek(token)
        return _link_page(token, card, usable, 200 if usable else 410)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        card = sign_in.consume(token)
    except sign_in.SignInLinkInvalid:
        card, _usable = sign_in.peek(token)
        return _link_page(token, card, False, 410)
    g.default_locale = card.locale
    refresh()
    flash(_("Here is your card. Add it to your wallet or bookmark this page to find it again."), "success")
    return _no_store(redirect(url_for("public.card", token=card.public_token), 303))
