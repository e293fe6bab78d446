"""``flask --app wsgi loyalty wallet-worker`` and ``flask --app wsgi loyalty wallet-check``."""
from __future__ import annotations

import json
import sys
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import clock
from . import certificates
from .settings import APPLE_KEYS, GOOGLE_KEYS, apple_configured, google_configured


def check_wallets(app) -> dict:
    """Plain-English problems per wallet; ``configured`` False when none of its settings is set."""
    from . import apple_pass, google

    c = app.config
    report: dict = {}
    apple_any = any(c.get(k) for k in APPLE_KEYS)
    apple: dict = {"configured": apple_configured(app), "problems": [], "notes": []}
    if apple_any:
        missing = [k for k in APPLE_KEYS if not c.get(k)]
        if missing:
            apple["problems"].append("Missing settings: " + ", ".join(missing) + ".")
        apple["problems"] += apple_pass.check_configuration(
            c.get("APPLE_PASS_CERT"), c.get("APPLE_PASS_KEY"), c.get("APPLE_PASS_KEY_PASSWORD"),
            c.get("APPLE_WWDR_CERT"), c.get("APPLE_PASS_TYPE_ID"), c.get("APPLE_TEAM_ID"), now=clock.now())
        # Both expiry dates, always shown (the problems above warn from 30 days ahead).
        apple["certificates"] = [{**entry, "not_after": entry["not_after"].isoformat() if entry["not_after"] else None}
                                 for entry in certificates.status(app)]
        base = urlsplit(c["PUBLIC_BASE_URL"])
        if base.scheme != "https":
            apple["problems"].append(
                f"PUBLIC_BASE_URL ({c['PUBLIC_BASE_URL']}) is not https: iPhones only talk to a pass web service "
                "over HTTPS, so passes would never update.")
        if not (c.get("APNS_URL") or "").startswith("https://"):
            apple["problems"].append("APNS_URL must be an https:// address (normally https://api.push.apple.com).")
    else:
        apple["notes"].append("Apple Wallet is not configured (set " + ", ".join(APPLE_KEYS) + ").")
    report["apple"] = apple

    google_any = any(c.get(k) for k in GOOGLE_KEYS)
    goo: dict = {"configured": google_configured(app), "problems": [], "notes": []}
    if google_any:
        goo["problems"] += google.check_configuration(c.get("GOOGLE_SERVICE_ACCOUNT_FILE"),
                                                      c.get("GOOGLE_WALLET_ISSUER_ID"))
        if not urlsplit(c["PUBLIC_BASE_URL"]).scheme == "https":
            goo["notes"].append("PUBLIC_BASE_URL is not https: Google needs the program logo at a public https "
                                "address.")
    else:
        goo["notes"].append("Google Wallet is not configured (set " + ", ".join(GOOGLE_KEYS) + ").")
    report["google"] = goo
    report["ok"] = (apple_any or google_any) and not apple["problems"] and not goo["problems"]
    if not apple_any and not google_any:
        report["problems"] = ["No wallet is configured: customers can use their card page, but no wallet pass."]
    return report


def register(loyalty_cli) -> None:
    @loyalty_cli.command("wallet-worker")
    @click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
    @click.option("--batch", default=100, show_default=True, type=click.IntRange(1, 10_000),
                  help="Outbox rows claimed per round.")
    @click.option("--idle-sleep", default=1.0, show_default=True, type=click.FloatRange(0.01, 3600),
                  help="Seconds to wait when nothing is due.")
    @click.option("--json", "as_json", is_flag=True, help="With --once: print one JSON object.")
    @with_appcontext
    def wallet_worker(once, batch, idle_sleep, as_json):
        """Deliver wallet updates (Apple pushes, Google Wallet objects) from the outbox. Run several safely."""
        from .worker import WalletWorker

        app = current_app._get_current_object()
        worker = WalletWorker(app, batch=batch)
        if once:
            try:
                result = worker.run_once()
            finally:
                worker.close()
            data = {"claimed": result.claimed, "delivered": result.delivered, "failed": result.failed,
                    "pushes": result.pushes, "google_updates": result.google_updates}
            if as_json:
                click.echo(json.dumps(data))
            else:
                click.echo(f"Delivered {result.delivered} update(s), {result.failed} to retry "
                           f"({result.pushes} push(es), {result.google_updates} Google update(s)).")
            return
        if not apple_configured(app) and not google_configured(app):
            click.echo("Note: no wallet is configured; the worker will only mark updates as delivered.", err=True)
        worker.install_signal_handlers()
        worker.run_forever(idle_sleep=idle_sleep)

    @loyalty_cli.command("wallet-check")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @with_appcontext
    def wallet_check(as_json):
        """Check the Apple and Google Wallet settings and files. Exits 1 on a problem."""
        report = check_wallets(current_app)
        if as_json:
            click.echo(json.dumps(report))
        else:
            for name, title in (("apple", "Apple Wallet"), ("google", "Google Wallet")):
                part = report[name]
                if part["problems"]:
                    click.echo(f"{title}: PROBLEMS")
                    for problem in part["problems"]:
                        click.echo(f"  - {problem}")
                elif part["configured"]:
                    click.echo(f"{title}: OK")
                for cert in part.get("certificates", []):
                    if cert["not_after"]:
                        state = {"ok": "", "expiring": "  WARNING: expires soon, renew it",
                                 "expired": "  EXPIRED: pass downloads are stopped"}[cert["state"]]
                        click.echo(f"  {cert['label'][0].upper() + cert['label'][1:]} valid until {cert['not_after'][:10]} "
                                   f"({cert['days_left']} days left){state}")
                for note in part["notes"]:
                    click.echo(f"{title}: {note}")
            for problem in report.get("problems", []):
                click.echo(problem)
        if not report["ok"]:
            sys.exit(1)
