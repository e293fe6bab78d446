.PHONY: serve test test-pg bench
# Serve the app on SQLite with demo data at http://127.0.0.1:5000
serve:
	scripts/serve.sh
# Run the whole test suite (SQLite; set TEST_DATABASE_URL for PostgreSQL)
test:
	scripts/test.sh
test-pg:
	TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test scripts/test.sh
