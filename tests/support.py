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
