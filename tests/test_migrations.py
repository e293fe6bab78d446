"""Alembic on the real database: upgrade from empty, the models match, downgrade to base and up again."""
from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from portal.extensions import db

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")


def test_models_match_migrations(app):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(app):
    downgrade(directory=MIGRATIONS, revision="base")
    db.session.remove()
    tables = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    upgrade(directory=MIGRATIONS)
    db.session.remove()
    assert {"loyalty_transactions", "loyalty_cards", "wallet_outbox"} <= set(inspect(db.engine).get_table_names())
    triggers = {t for t in _trigger_names()}
    assert {"loyalty_transactions_no_update", "loyalty_transactions_no_delete"} <= triggers


def _trigger_names():
    from sqlalchemy import text

    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            return conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars().all()
        return conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars().all()
