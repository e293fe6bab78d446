"""The loyalty portal: ``create_app`` builds the Flask application."""
from __future__ import annotations

import logging

from flask import Flask, request

from .config import load_config
from .storage import connection_lost, engine_options, is_read_only, is_writing, run_unit

READ_ONLY_METHODS = {"GET", "HEAD", "OPTIONS"}


class PortalFlask(Flask):
    """One unit of work per request: the view runs inside :func:`portal.storage.run_unit`, which commits when the
    view returns, rolls back when it raises, and retries the whole view on a serialization failure or deadlock
    (PostgreSQL) — so services only ever flush. The before-request hooks (authentication, the logged-in user,
    the locale) have run before it: a request is authenticated before its view, always."""

    def dispatch_request(self):
        view = self.view_functions.get(request.endpoint)
        write = (request.method not in READ_ONLY_METHODS or is_writing(view)) and not is_read_only(view)
        return run_unit(super().dispatch_request, write=write)

    def preprocess_request(self):
        # before_request functions read (API key, user, locale) before the view's unit of work; a connection
        # found dead there is replaced and they run once more.
        try:
            return super().preprocess_request()
        except Exception as exc:
            if not connection_lost(exc):
                raise
            from .extensions import db

            db.session.rollback()
            return super().preprocess_request()


def create_app(config: dict | None = None) -> Flask:
    app = PortalFlask(__name__, instance_relative_config=True)
    load_config(app, config)
    options = dict(engine_options(app.config["SQLALCHEMY_DATABASE_URI"], app.config["SQLITE_BUSY_TIMEOUT"]))
    options.update(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if app.config.get("PROXY_COUNT"):
        # Behind N reverse proxies: trust their X-Forwarded-For/-Proto/-Host (docs/deploy.md).
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_prefix=n)
    logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"))

    from . import extensions as ext

    ext.db.init_app(app)
    ext.migrate.init_app(app, ext.db, directory=str(_migrations_dir()), render_as_batch=True)
    ext.csrf.init_app(app)
    ext.login_manager.init_app(app)
    ext.limiter.init_app(app)
    from .services.i18n import ensure_catalogues, select_locale

    ext.babel.init_app(app, locale_selector=select_locale, default_translation_directories="translations")
    ensure_catalogues(app)  # compiled in a checkout when missing or stale; missing in production: no start

    from . import models  # noqa: F401  (register the tables)
    from .web import init_web

    init_web(app)
    from .i18n_filters import init_i18n_filters

    init_i18n_filters(app)

    from .blueprints import register_blueprints

    register_blueprints(app)

    from .cli import register_cli

    register_cli(app)
    return app


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"
