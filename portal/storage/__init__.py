"""The storage seam: transactions, locking and the ledger's writes, for SQLite and PostgreSQL.

Services call these functions and never ask which database they run on; docs/architecture.md describes the
guarantees. ``transactions``: units of work (commit, retries, SQLite's ``BEGIN IMMEDIATE`` and its busy timeout).
``rows``: the card lock, the ledger append, ``INSERT … ON CONFLICT`` and the API-key look-up.
"""
from .transactions import (DEFAULT_BUSY_TIMEOUT, connection_lost, engine_options, is_busy, is_read_only,  # noqa: F401
                           is_retryable, is_writing, read_only, run_unit, sqlite_begin_outside_requests, writes)
from .types import UTCDateTime  # noqa: F401
from .rows import api_key_row, append_ledger_row, dialect_insert, lock_card, locked  # noqa: F401,E402
