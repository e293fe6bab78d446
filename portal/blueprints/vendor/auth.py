"""Log in, log out, change password."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, g, make_response, redirect, request, session, url_for
from flask_babel import gettext as _, ngettext
from flask_login import current_user, login_user, logout_user

from ...extensions import limiter
from ...forms import LoginForm, PasswordForm
from ...services import accounts, clock
from ...services.errors import ValidationError
from ...web import is_htmx, render
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
            _fresh_session()  # no fixation
            login_user(user)
            session["seen"] = _now_seconds()
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


def _fresh_session() -> None:
    """Forget the session (and who is logged in), keeping only the chosen language."""
    lang = session.get("lang")
    logout_user()
    session.clear()
    g.pop("csrf_token", None)  # the token cached for this request belonged to the old session
    if lang:
        session["lang"] = lang


def _now_seconds() -> int:
    return int(clock.now().timestamp())


def stay_logged_in() -> None:
    """After this login's sessions were ended on purpose (new password, "log out everywhere"): the session of
    the request that did it carries the new session version and stays."""
    login_user(current_user._get_current_object())


@bp.before_request
def end_idle_staff_session():
    """A staff (tablet) session unused for ``STAFF_IDLE_TIMEOUT_MINUTES`` ends: the next request goes to the login
    page with a message. The last use is kept in the signed session cookie (to the minute, so a busy tablet does
    not get a new cookie with every request). Staff can only use this blueprint's pages, so the check (and the
    session it reads) stays off the API and the customers' pages."""
    minutes = current_app.config.get("STAFF_IDLE_TIMEOUT_MINUTES") or 0
    if minutes <= 0 or not current_user.is_authenticated or current_user.role != "staff":
        return None
    now, seen = _now_seconds(), session.get("seen")
    if isinstance(seen, int) and now - seen > minutes * 60:
        _fresh_session()
        flash(ngettext("You were logged out after %(num)s minute without activity.",
                       "You were logged out after %(num)s minutes without activity.", minutes), "info")
        target = url_for("vendor.login")
        if is_htmx():  # htmx loads the login page as a whole page, not into the tablet's panel
            response = make_response("", 200)
            response.headers["HX-Redirect"] = target
            return response
        return redirect(target)
    if not isinstance(seen, int) or now - seen >= 60:
        session["seen"] = now
    return None


@bp.post("/logout")
def logout():
    accounts.log_out(current_user._get_current_object() if current_user.is_authenticated else None)
    _fresh_session()
    flash(_("You are logged out."), "info")
    return redirect(url_for("vendor.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def password():
    form = PasswordForm()
    errors: dict = {}
    if form.validate_on_submit():
        try:
            accounts.change_password(current_user._get_current_object(), form.current_password.data,
                                     form.new_password.data)
        except ValidationError as error:
            errors = field_errors(error)
        else:
            stay_logged_in()
            flash(_("Your password was changed. Your other sessions of this login were logged out."), "success")
            return redirect(landing_url(current_user))
    for name, messages in form.errors.items():
        errors.setdefault(name, []).extend(str(m) for m in messages)
    return render("vendor/password.html", form=form, errors=errors, status=422 if errors else 200)
