"""Lines of code (not blank, not comments, not docstrings) of the modules a stamp goes through, from the API route
to the ledger row — the figure in docs/performance.md.

    .venv/bin/python bench/code_lines.py [ROOT]
"""
from __future__ import annotations

import io
import sys
import tokenize
from pathlib import Path

STAMP_PATH = [
    "portal/__init__.py", "portal/db.py", "portal/storage/__init__.py", "portal/storage/transactions.py",
    "portal/storage/rows.py", "portal/storage/types.py", "portal/blueprints/api/common.py",
    "portal/blueprints/api/vendor.py", "portal/services/accounts.py", "portal/services/api_key_cache.py",
    "portal/services/operations.py", "portal/services/cards.py", "portal/services/program_cache.py",
    "portal/services/pins.py", "portal/services/ledger.py", "portal/services/idempotency.py",
]
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER,
        tokenize.ENCODING}


def code_lines(source: str) -> int:
    lines: set[int] = set()
    statement_start = True
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in SKIP:
            statement_start = statement_start or token.type in (tokenize.NEWLINE, tokenize.INDENT,
                                                                tokenize.DEDENT)
            continue
        if token.type == tokenize.STRING and statement_start:
            statement_start = False  # a docstring (a statement that is only a string)
            continue
        statement_start = False
        lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines)


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    total = 0
    for name in STAMP_PATH:
        path = root / name
        if path.exists():
            n = code_lines(path.read_text())
            total += n
            print(f"{n:5d}  {name}")
    print(f"{total:5d}  total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
