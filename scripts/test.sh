#!/usr/bin/env bash
# Run the whole test suite. SQLite by default; TEST_DATABASE_URL=postgresql+psycopg://… for PostgreSQL.
# Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test --with-system || exit 1
export PYTHONDONTWRITEBYTECODE=1
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
if [ $status -eq 5 ]; then
  echo "test.sh: pytest collected no tests — treating that as a failure" >&2
  exit 1
fi
exit $status
