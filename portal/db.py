"""Kept for imports: the database plumbing lives in :mod:`portal.storage` (the storage seam)."""
from .storage import (UTCDateTime, connection_lost, dialect_insert, engine_options, is_retryable,  # noqa: F401
                      sqlite_begin_outside_requests)
from .storage import run_unit as run_in_transaction  # noqa: F401
