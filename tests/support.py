"""Helpers shared by every test directory (import as ``from support import …``; ``tests/`` is on the path)."""
from __future__ import annotations

import os
import re

#: The database switch: ``TEST_DATABASE_URL`` names a PostgreSQL server, else SQLite files in a temp dir.
PG_URL = os.environ.get("TEST_DATABASE_URL", "")
IS_PG = PG_URL.startswith("postgres")

#: The CSRF token of a page: a form's hidden field, or the ``hx-headers`` of ``<body>``.
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|"X-CSRFToken":\s*"([^"]+)"')


def csrf_from(html: str, *, required: bool = True) -> str | None:
    match = CSRF_RE.search(html)
    if match is None:
        assert not required, "no CSRF token on the page"
        return None
    return match.group(1) or match.group(2)


def field_value(html: str, name: str) -> str | None:
    """The ``value`` of the input named ``name`` (either attribute order), or None."""
    match = re.search(rf'name="{re.escape(name)}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{re.escape(name)}"', html)
    return match.group(1) if match else None


def rewards_of(program) -> list:
    """A points program's reward catalog, cheapest first, read now: relationships do not load lazily
    (``lazy="raise_on_sql"``), and a factory's program is expired by every later commit."""
    from sqlalchemy import select

    from portal.extensions import db
    from portal.models import LoyaltyReward

    return list(db.session.scalars(select(LoyaltyReward).where(LoyaltyReward.program_id == program.id)
                                   .order_by(LoyaltyReward.points_cost, LoyaltyReward.id)))


def run_workers(make_app, worker_class, *, rounds: int, count: int = 2, batch: int = 3,
                timeout: float = 60) -> list[Exception]:
    """``count`` outbox workers of ``worker_class`` (the wallet or the mail worker), each with its own app from
    ``make_app()`` (so its own connections), ``rounds`` rounds each, at the same time in threads. Returns the
    errors they raised (a test asserts none)."""
    import threading

    from portal.extensions import db

    errors: list[Exception] = []
    # The apps are made before the threads start: CPython 3.11.7 can fail two compilations running at once in
    # threads ("SystemError: AST constructor recursion depth mismatch", seen in this test's create_app); the
    # workers' rounds still run at the same time.
    apps = [make_app() for _ in range(count)]

    def work(name, other):
        try:
            worker = worker_class(other, worker_id=name, batch=batch)
            for _ in range(rounds):
                worker.run_round()
            if hasattr(worker, "close"):
                worker.close()
            with other.app_context():
                db.engine.dispose()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}", apps[i])) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return errors
