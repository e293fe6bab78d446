"""Log in, log out, change password."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ...extensions import limiter
from ...forms import LoginForm, PasswordForm
from ...services import accounts
from ...services.errors import ValidationError
from ...web import render
from . import bp
from .helpers import field_errors


def landing_url(user) -> str:
    if user.role == "admin":
        return url_for("admin.index")
    if user.role == "staff":
        return url_for("vendor.tablet")
    return url_for("vendor.dashboard")


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.get("/")
@bp.get("/home")
def home():
    """The site's front door: logged-in users land on their role's page, others on the login form."""
    return redirect(landing_url(current_user))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    form = LoginForm()
    error = None
    if request.method == "GET" and current_user.is_authenticated:
        return redirect(landing_url(current_user))
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            lang = session.get("lang")
            session.clear()  # a fresh session: no fixation
            g.pop("csrf_token", None)  # the token cached for this request belonged to the old session
            if lang:
                session["lang"] = lang
            login_user(user)
            target = _safe_next(request.args.get("next"))
            # Staff may only use the tablet: never follow a "next" elsewhere for them.
            if user.role != "owner":
                target = None
            return redirect(target or landing_url(user))
        error = _("Wrong email or password.")
    elif request.method == "POST":
        error = _("Wrong email or password.")
    status = 200 if error is None else 401
    return render("vendor/login.html", form=form, error=error, status=status)


@bp.get("/logout")
def logout_confirm():
    return render("vendor/logout.html")


@bp.post("/logout")
def logout():
    lang = session.get("lang")
    logout_user()
    session.clear()
    g.pop("csrf_token", None)
    if lang:
        session["lang"] = lang
    flash(_("You are logged out."), "info")
    return redirect(url_for("vendor.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def password():
    form = PasswordForm()
    errors: dict = {}
    if form.validate_on_submit():
        try:
            accounts.change_password(current_user, form.current_password.data, form.new_password.data)
        except ValidationError as error:
            errors = field_errors(error)
        else:
            flash(_("Your password was changed."), "success")
            return redirect(landing_url(current_user))
    for name, messages in form.errors.items():
        errors.setdefault(name, []).extend(str(m) for m in messages)
    return render("vendor/password.html", form=form, errors=errors, status=422 if errors else 200)
