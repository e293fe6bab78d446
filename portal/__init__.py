"""The loyalty portal: ``create_app`` builds the Flask application."""
from __future__ import annotations

import logging

from flask import Flask, g

from .config import load_config
from .db import begin_unit_of_work, connection_lost, engine_options, run_in_transaction
from .services import program_cache
from .services.errors import DomainError


class PortalFlask(Flask):
    """One database transaction per request: the view runs inside :func:`portal.db.run_in_transaction`, which
    commits when the view returns, rolls back when it raises, and retries the whole view on a serialization
    failure or deadlock (PostgreSQL) — so services only ever flush."""

    def dispatch_request(self):
        begin_unit_of_work()
        return run_in_transaction(self._dispatch_unit)

    def _dispatch_unit(self):
        # Checks that belong in the view's own transaction, in every attempt of it: an API key taken from SQLite's
        # per-process copy is confirmed here (portal/services/api_key_cache.py). They run after the view, before
        # anything is committed or answered, so that they can use what the view read (the configuration's
        # version comes with the card a stamp locks); a failed check replaces the view's answer or refusal.
        checks = g.get("unit_checks")
        if not checks:
            return super().dispatch_request()
        program_cache.forget_version_read()
        try:
            result = super().dispatch_request()
        except DomainError:
            for check in checks:
                check()
            raise
        for check in checks:
            check()
        return result

    def preprocess_request(self):
        # before_request functions read (API key, vendor, locale) in the request's transaction before the view's
        # unit of work starts; a connection found dead there is replaced and they run once more.
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
    options = dict(engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
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
    from .services import api_key_cache, program_cache

    api_key_cache.init_app(app)
    program_cache.forget()  # copies belong to the database they were read from
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
