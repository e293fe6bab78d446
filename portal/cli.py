"""``flask --app wsgi loyalty …`` and ``flask --app wsgi translate …``.

Every loyalty command accepts ``--json`` and then prints exactly one JSON object on stdout; errors go to stderr
with a non-zero exit code.
"""
from __future__ import annotations

import json
import sys

import click
from flask import Flask
from flask.cli import AppGroup

from .storage import run_unit
from .services.errors import DomainError

loyalty_cli = AppGroup("loyalty", help="Loyalty administration: accounts, keys, demo data, ledger checks.")


def _emit(as_json: bool, data: dict, human: str) -> None:
    if as_json:
        click.echo(json.dumps(data, default=str))
    else:
        click.echo(human)


def _fail(message: str, as_json: bool, code: int = 1):
    if as_json:
        click.echo(json.dumps({"error": message}), err=True)
    else:
        click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _domain_message(error: DomainError) -> str:
    text = error.render_message()
    if error.fields:
        details = "; ".join(f"{k}: {', '.join(str(m) for m in v)}" for k, v in error.fields.items())
        text = f"{text} ({details})"
    return text


def _run(fn, as_json: bool, *, write: bool = True):
    try:
        return run_unit(fn, write=write)
    except DomainError as error:
        _fail(_domain_message(error), as_json)


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@loyalty_cli.command("create-admin")
@click.option("--email", required=True)
@click.option("--password", required=True)
@json_option
def create_admin(email, password, as_json):
    """Create a platform operator account."""
    from .services import accounts

    user = _run(lambda: accounts.create_admin(email, password), as_json)
    _emit(as_json, {"id": user.id, "email": user.email, "role": user.role}, f"Admin {user.email} created.")


@loyalty_cli.command("create-vendor")
@click.option("--name", required=True)
@click.option("--owner-email", required=True)
@click.option("--owner-password", required=True)
@click.option("--timezone", default="Europe/Luxembourg", show_default=True)
@click.option("--locale", default="en", show_default=True, help="en, fr, de or lb (lu accepted)")
@click.option("--slug", default=None)
@json_option
def create_vendor(name, owner_email, owner_password, timezone, locale, slug, as_json):
    """Create a shop with its owner login."""
    from .services import accounts

    vendor, owner = _run(lambda: accounts.create_vendor(name=name, owner_email=owner_email,
                                                        owner_password=owner_password, timezone=timezone,
                                                        locale=locale, slug=slug), as_json)
    _emit(as_json, {"id": vendor.id, "slug": vendor.slug, "name": vendor.name, "timezone": vendor.timezone,
                    "locale": vendor.locale, "owner": {"id": owner.id, "email": owner.email}},
          f"Vendor {vendor.name} ({vendor.slug}) created with owner {owner.email}.")


@loyalty_cli.command("create-api-key")
@click.option("--vendor", "vendor_slug", default=None, help="The vendor's slug.")
@click.option("--admin", "is_admin", is_flag=True, help="A key for the admin API.")
@click.option("--name", default="", help="A label to recognise the key by.")
@json_option
def create_api_key(vendor_slug, is_admin, name, as_json):
    """Create an API key. It is shown once; only its hash is stored."""
    from .services import accounts

    if bool(vendor_slug) == bool(is_admin):
        _fail("give either --vendor SLUG or --admin", as_json, 2)

    def work():
        vendor = accounts.get_vendor_by_slug(vendor_slug) if vendor_slug else None
        return accounts.create_api_key(vendor=vendor, name=name)

    key, plaintext = _run(work, as_json)
    _emit(as_json, {"api_key": plaintext, "id": key.id, "scope": key.scope, "vendor": vendor_slug},
          f"API key (shown once, store it now):\n{plaintext}")


@loyalty_cli.command("verify-ledger")
@click.option("--vendor", "vendor_slug", default=None)
@json_option
def verify_ledger(vendor_slug, as_json):
    """Check every card: balance == sum of its transactions, and the hash chain. Exits 1 on a mismatch."""
    from .services import accounts, ledger

    def work():
        vendor_id = accounts.get_vendor_by_slug(vendor_slug).id if vendor_slug else None
        return ledger.verify(vendor_id)

    report = _run(work, as_json, write=False)  # long and read-only: never holds SQLite's write lock
    human = (f"Ledger OK: {report.cards_checked} cards, {report.transactions_checked} transactions."
             if report.ok else "Ledger problems:\n" + "\n".join(f"  - {p}" for p in report.problems))
    _emit(as_json, report.to_dict(), human)
    if not report.ok:
        sys.exit(1)


@loyalty_cli.command("demo")
@click.option("--reset", is_flag=True, help="Remove the demo shop and create it again.")
@json_option
def demo(reset, as_json):
    """Create a demo shop with logins, staff PINs, two programs, cards and history (idempotent)."""
    from .services import demo as demo_service

    def work():
        if reset:
            demo_service.remove()
        elif demo_service.exists():
            saved = demo_service.load_saved()
            if saved is not None:
                return saved
            demo_service.remove()
        result = demo_service.create()
        demo_service.save(result)
        return result

    result = _run(work, as_json)
    human = "\n".join([
        f"Demo shop: {result['vendor']['name']}  ({result['base_url']})",
        f"  Owner login:  {result['owner']['email']} / {result['owner']['password']}",
        f"  Staff tablet: {result['staff_user']['email']} / {result['staff_user']['password']}",
        f"  Admin login:  {result['admin']['email']} / {result['admin']['password']}",
        "  Staff PINs:   " + ", ".join(f"{s['name']} {s['pin']} ({s['program_slug']})" for s in result["staff"]),
        f"  Vendor API key: {result['vendor_api_key']}",
        f"  Admin API key:  {result['admin_api_key']}",
        "  Enrolment:    " + ", ".join(p["enroll_url"] for p in result["programs"]),
    ])
    _emit(as_json, result, human)


@loyalty_cli.command("purge-idempotency")
@json_option
def purge_idempotency(as_json):
    """Delete idempotency records older than IDEMPOTENCY_TTL_HOURS (at least 24 h)."""
    from .services import idempotency

    removed = _run(idempotency.purge, as_json)
    _emit(as_json, {"removed": removed}, f"Removed {removed} idempotency records.")


@loyalty_cli.command("staff-digest")
@click.option("--week", default=None, help="ISO week such as 2026-W48 (default: each shop's previous week).")
@json_option
def staff_digest(week, as_json):
    """Queue the weekly staff-signals email to every shop owner (idempotent per week; schedule it weekly)."""
    from .services import staff_digest as digest

    result = _run(lambda: digest.queue_week(week), as_json)
    _emit(as_json, result, f"Queued {result['queued']} digest(s) for {result['shops']} shop(s); "
                           f"{result['already']} already queued earlier.")


def register_cli(app: Flask) -> None:
    app.cli.add_command(loyalty_cli)
    from .translate import translate_cli

    app.cli.add_command(translate_cli)
    from .services.mail import cli as mail_cli

    mail_cli.register(loyalty_cli)
    try:
        from .services.wallet import cli as wallet_cli
    except ImportError:
        return
    wallet_cli.register(loyalty_cli)
