"""Shared fixtures: a fresh, migrated database per test (SQLite file copy or PostgreSQL truncation), the app,
clients, factories, a live server for browser tests and Debian Chromium through Playwright.

``TEST_DATABASE_URL`` chooses the database: unset → SQLite files in a temp dir; e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test`` → that PostgreSQL database (its public schema is rebuilt).
"""
from __future__ import annotations

import itertools
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
from flask.globals import app_ctx
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from portal import create_app
from portal.storage import sqlite_begin_outside_requests
from portal.extensions import db as _db

ROOT = Path(__file__).resolve().parent.parent
from support import IS_PG, PG_URL, csrf_from
_counter = itertools.count(1)

TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
    "PIN_PEPPER": "test-pin-pepper-not-for-production-0123456789",
    "BCRYPT_ROUNDS": 4,
    "PUBLIC_BASE_URL": "http://localhost",
    "RATELIMIT_ENABLED": False,
    # A long busy timeout: the machine running the tests may be slow; tests/test_storage.py sets a short one.
    "SQLITE_BUSY_TIMEOUT": 30,
    "RATELIMIT_STORAGE_URI": "memory://",
    "APPLE_PASS_CERT": None,
    "GOOGLE_SERVICE_ACCOUNT_FILE": None,
}


def _migrate(url: str, instance: Path) -> None:
    from flask_migrate import upgrade

    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    app.instance_path = str(instance)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        _db.engine.dispose()


@pytest.fixture(scope="session")
def pg_url():
    """A private database on the PostgreSQL server of TEST_DATABASE_URL, so parallel runs never collide;
    dropped at the end of the session."""
    from sqlalchemy.engine import make_url

    base = make_url(PG_URL)
    name = f"{base.database}_run_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory, request):
    """Migrate once per session with Alembic (never create_all): a template SQLite file, or a PG database."""
    base = tmp_path_factory.mktemp("db")
    if IS_PG:
        url = request.getfixturevalue("pg_url")
        _migrate(url, base)
        return url
    template = base / "template.sqlite3"
    _migrate(f"sqlite:///{template}", base)
    return template


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"))]
        if tables:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(database_template, tmp_path):
    if IS_PG:
        _truncate_pg(database_template)
        return database_template
    path = tmp_path / f"test-{next(_counter)}.sqlite3"
    shutil.copyfile(database_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config(request):
    """Extra settings: ``@pytest.mark.parametrize("app_config", [{...}], indirect=True)`` on a test, or override
    the fixture in a module."""
    return getattr(request, "param", {})


class FreshGlobalsClient(FlaskClient):
    """Every request gets its own ``g``, as in production. The ``app`` fixture keeps an application context pushed
    for the test's own database work, and Flask runs the test client's requests in that context when one is
    pushed: without this, ``g`` (the logged-in user, the locale Flask-Babel chose) would carry over from one
    request to the next."""

    def open(self, *args, **kwargs):
        ctx = app_ctx._get_current_object() if app_ctx else None
        if ctx is None:
            return super().open(*args, **kwargs)
        saved, ctx.g = ctx.g, self.application.app_ctx_globals_class()
        try:
            return super().open(*args, **kwargs)
        finally:
            ctx.g = saved


@pytest.fixture
def app(database_url, tmp_path, app_config):
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    config = {**TEST_CONFIG, "DATABASE_URL": database_url, **app_config}
    application = create_app(config)
    application.instance_path = str(instance)
    application.test_client_class = FreshGlobalsClient
    # The test thread only inspects and seeds: it must never sit on SQLite's write lock while a live-server
    # thread waits for it. (Tests call db.session.rollback() to see what other threads committed.)
    token = sqlite_begin_outside_requests.set("DEFERRED")
    with application.app_context():
        yield application
        _db.session.remove()
        _db.engine.dispose()
    sqlite_begin_outside_requests.reset(token)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Factories:
    """Small builders that commit, so the data is visible to the app's requests and other threads."""

    def __init__(self, app):
        self.app = app
        self.n = itertools.count(1)

    def _commit(self, value):
        _db.session.commit()
        return value

    def vendor(self, name=None, *, timezone="Europe/Luxembourg", locale="en", password="owner-password-1"):
        from portal.services import accounts

        i = next(self.n)
        vendor, owner = accounts.create_vendor(name=name or f"Shop {i}", owner_email=f"owner{i}-{os.getpid()}@shop.test",
                                               owner_password=password, timezone=timezone, locale=locale)
        owner.plain_password = password
        vendor.owner = owner
        return self._commit(vendor)

    def owner_actor(self, vendor):
        from portal.services.accounts import actor_for_user

        return actor_for_user(vendor.owner)

    def user(self, vendor=None, *, role="staff", password="user-password-1", email=None):
        from portal.services import accounts

        i = next(self.n)
        user = accounts.create_user(email=email or f"{role}{i}@shop.test", password=password, role=role, vendor=vendor)
        user.plain_password = password
        return self._commit(user)

    def program(self, vendor, **fields):
        from portal.services import programs

        data = {"type": "stamps", "name": f"Program {next(self.n)}", "stamps_required": 10,
                "reward_text": "A free coffee", "require_pin": False}
        if fields.get("type") == "points":
            data = {"type": "points", "name": f"Points {next(self.n)}", "points_per_unit": "1.00",
                    "require_pin": False, "rewards": [{"name": "Croissant", "points_cost": 20},
                                                      {"name": "Cake", "points_cost": 100}]}
        data.update(fields)
        return self._commit(programs.create_program(self.owner_actor(vendor), data))

    def pin(self, program, pin="1234", name=None):
        from portal.services import pins

        row, plaintext = pins.create_pin(self.owner_actor(program.vendor), program.id,
                                         {"staff_name": name or f"Staff {next(self.n)}", "pin": pin})
        row.plain_pin = plaintext
        return self._commit(row)

    def card(self, program, **customer):
        from portal.services import cards

        i = next(self.n)
        data = {"name": f"Customer {i}", "email": f"customer{i}@example.com"}
        data.update(customer)
        card, _ = cards.enroll(program, data)
        return self._commit(card)

    def api_key(self, vendor=None):
        from portal.services import accounts

        _, plaintext = accounts.create_api_key(vendor=vendor, name="test")
        return self._commit(plaintext)


@pytest.fixture
def factories(app):
    return Factories(app)


class Api:
    """A JSON client bound to one API key."""

    def __init__(self, client, key):
        self.client, self.key = client, key

    def _headers(self, headers):
        merged = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        merged.update(headers or {})
        return merged

    def get(self, path, headers=None, **kw):
        return self.client.get(path, headers=self._headers(headers), **kw)

    def post(self, path, json=None, headers=None, **kw):
        return self.client.post(path, json=json if json is not None else {}, headers=self._headers(headers), **kw)

    def patch(self, path, json=None, headers=None, **kw):
        return self.client.patch(path, json=json or {}, headers=self._headers(headers), **kw)

    def put(self, path, json=None, headers=None, **kw):
        return self.client.put(path, json=json or {}, headers=self._headers(headers), **kw)

    def delete(self, path, headers=None, **kw):
        return self.client.delete(path, headers=self._headers(headers), **kw)


@pytest.fixture
def make_api(client):
    return lambda key: Api(client, key)


@pytest.fixture
def shop(factories, make_api):
    """A vendor with a stamp program (PIN required), a points program, a staff PIN, a card on each and an API."""
    vendor = factories.vendor("Café Test")
    stamps = factories.program(vendor, require_pin=True, name="Coffee card")
    points = factories.program(vendor, type="points", name="Bakery points")
    pin = factories.pin(stamps, "4321", "Anna")
    points_pin = factories.pin(points, "4321", "Anna")
    stamp_card = factories.card(stamps)
    points_card = factories.card(points)
    key = factories.api_key(vendor)

    class Shop:
        pass

    s = Shop()
    s.vendor, s.stamps, s.points, s.pin, s.points_pin = vendor, stamps, points, pin, points_pin
    s.stamp_card, s.points_card, s.key, s.api = stamp_card, points_card, key, make_api(key)
    return s


@pytest.fixture
def login(client):
    """``login(email, password)`` through the real login form (CSRF included); returns the response."""

    def do_login(email, password, *, target=client):
        page = target.get("/login")
        token = csrf_from(page.get_data(as_text=True))
        return target.post("/login", data={"email": email, "password": password, "csrf_token": token},
                           follow_redirects=False)

    return do_login


# --- live server and browser -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(app):
    """The real app on a free loopback port, in a thread (threaded WSGI server)."""
    from werkzeug.serving import make_server

    port = free_port()
    app.config["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Live:
        url = f"http://127.0.0.1:{port}"

    yield Live()
    server.shutdown()
    thread.join(timeout=5)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (.ci/run and `make test` install it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="session")
def screenshot_dir():
    path = ROOT / "test-output" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
