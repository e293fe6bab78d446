#!/usr/bin/env bash
# Serve the portal on SQLite (instance/portal.sqlite3) with demo data at http://127.0.0.1:5000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export FLASK_APP=wsgi
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:${PORT:-5000}}
.venv/bin/flask db upgrade
.venv/bin/flask loyalty demo
# Customers' emails: without SMTP_HOST the mail worker writes them to instance/mail/*.eml and to this log.
.venv/bin/flask loyalty mail-worker &
mail_worker=$!
trap 'kill "$mail_worker" 2>/dev/null || true' EXIT
echo
echo "Serving on http://127.0.0.1:${PORT:-5000}  (Ctrl+C to stop); emails go to instance/mail/"
.venv/bin/flask run --host 127.0.0.1 --port "${PORT:-5000}"
