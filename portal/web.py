"""Cross-cutting web concerns: errors (JSON under /api/, pages elsewhere), security headers, the login manager,
and ``render`` for htmx (the whole page, or one block of the same template on ``HX-Request``)."""
from __future__ import annotations

import logging

from flask import Flask, g, jsonify, make_response, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from jinja2_fragments.flask import render_block
from werkzeug.exceptions import HTTPException

from .extensions import db, login_manager
from .services.errors import DomainError

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
    423: "locked", 429: "rate_limited", 500: "internal_error",
}
HTTP_MESSAGES = {
    400: _l("The request could not be understood."),
    401: _l("Authentication is required."),
    403: _l("You are not allowed to do this."),
    404: _l("Not found."),
    405: _l("This method is not allowed here."),
    413: _l("The request is too large."),
    415: _l("Unsupported content type."),
    429: _l("Too many requests. Please wait a moment and try again."),
    500: _l("Something went wrong on our side. Nothing was changed."),
}


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", "camera=(self), microphone=(), geolocation=()"),
    ("Content-Security-Policy",
     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
     "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
     "frame-ancestors 'none'"),
    ("Cache-Control", "no-store"),
)
SECURITY_HEADERS = tuple((name.lower(), name, value) for name, value in SECURITY_HEADERS)


class CookieSession(SecureCookieSessionInterface):
    """Flask's signed-cookie session, without the work a request that has no session cookie and never touches the
    session would pay for nothing (an API call with a bearer key, a first visit): Flask builds the cookie signer
    before it looks for the cookie, and works out the cookie's settings before it sees there is nothing to
    save. Reading, writing and verifying a session are Flask's own."""

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()  # what Flask returns for a request without the cookie
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if not session and not session.modified and not session.accessed:
            return  # nothing was read, set or removed: no cookie to send, no Vary
        super().save_session(app, session, response)


def wants_json() -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, code: str, message: str, **extra):
    body = {"code": code, "message": str(message)}
    body.update({k: v for k, v in extra.items() if v is not None})
    response = jsonify({"error": body})
    response.status_code = status
    if extra.get("retry_after") is not None:
        response.headers["Retry-After"] = str(extra["retry_after"])
    return response


def domain_error_response(error: DomainError):
    response = jsonify({"error": error.to_dict()})
    response.status_code = error.status
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def render(template: str, block: str | None = None, *, status: int = 200, **context):
    """The whole page, or only ``block`` of the same template when htmx asks (``Vary: HX-Request``)."""
    if block and is_htmx():
        body = render_block(template, block, **context)
    else:
        body = render_template(template, **context)
    response = make_response(body, status)
    response.headers["Vary"] = "HX-Request"
    return response


def error_page(status: int, message, **context):
    try:
        return render("errors/error.html", "content", status=status, status_code=status, message=message,
                      **context)
    except Exception:  # the error page itself must never fail
        log.exception("error page failed")
        return str(message), status


def init_web(app: Flask) -> None:
    app.session_interface = CookieSession()

    @login_manager.user_loader
    def load_user(session_id: str):
        from .services.accounts import user_for_session

        return user_for_session(session_id)

    login_manager.login_view = "vendor.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.session_protection = "strong"

    @app.errorhandler(DomainError)
    def handle_domain_error(error: DomainError):
        if wants_json():
            return domain_error_response(error)
        response = error_page(error.status, error.render_message(), error=error)
        if error.retry_after is not None and not isinstance(response, tuple):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(CSRFError)
    def handle_csrf(error):
        message = _l("Your form expired or came from another site. Reload the page and try again.")
        if wants_json():
            return json_error(400, "csrf_failed", message)
        return error_page(400, message)

    @app.errorhandler(HTTPException)
    def handle_http(error: HTTPException):
        status = error.code or 500
        if status == 429:
            retry = _retry_after_from_limiter()
            if wants_json():
                return json_error(429, "rate_limited", HTTP_MESSAGES[429], retry_after=retry)
            response = error_page(429, HTTP_MESSAGES[429])
            if retry:
                response.headers["Retry-After"] = str(retry)
            return response
        message = HTTP_MESSAGES.get(status, error.description)
        if wants_json():
            response = json_error(status, HTTP_CODES.get(status, "http_error"), message)
            if status == 405 and getattr(error, "valid_methods", None):
                response.headers["Allow"] = ", ".join(error.valid_methods)
            return response
        if status in (301, 302, 303, 307, 308):
            return error
        return error_page(status, message)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return json_error(500, "internal_error", HTTP_MESSAGES[500])
        return error_page(500, HTTP_MESSAGES[500])

    @app.after_request
    def security_headers(response):
        # Owner, tablet and customer pages and the API carry personal data: no browser or proxy keeps a copy
        # (Cache-Control: no-store). A response that may be cached says so itself (static files, a program's logo
        # and theme, a pass with its Last-Modified, the poster), so forgetting the header on a new page errs on the
        # private side. Every header a response did not set itself is added.
        headers = response.headers
        present = {name.lower() for name in headers.keys()}
        for key, name, value in SECURITY_HEADERS:
            if key not in present:
                headers.add(name, value)
        if (request.is_secure or app.config.get("APP_ENV") == "production") \
                and "strict-transport-security" not in present:
            headers.add("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response

    from .services.cards import format_card_number

    app.add_template_filter(format_card_number, "card_number")  # the one way a card number is shown

    @app.context_processor
    def inject_globals():
        from .services.i18n import LANGUAGE_NAMES, SUPPORTED, current_locale

        return {"languages": [(code, LANGUAGE_NAMES[code]) for code in SUPPORTED], "current_locale": current_locale(),
                "current_vendor": getattr(g, "vendor", None)}


def _retry_after_from_limiter() -> int | None:
    limit = getattr(g, "view_rate_limit", None)
    if limit is None:
        return None
    try:
        from .extensions import limiter

        reset, _remaining = limiter.limiter.get_window_stats(limit[0], *limit[1])
        import time

        return max(1, int(reset - time.time()))
    except Exception:  # noqa: BLE001 - a missing hint must not break the 429 itself
        return None
