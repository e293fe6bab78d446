"""``flask --app wsgi loyalty mail-worker [--once]``."""
from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import with_appcontext

from .settings import smtp_configured


def register(loyalty_cli) -> None:
    @loyalty_cli.command("mail-worker")
    @click.option("--once", is_flag=True, help="Send what is due now, then exit.")
    @click.option("--batch", default=50, show_default=True, type=click.IntRange(1, 10_000),
                  help="Outbox rows claimed per round.")
    @click.option("--idle-sleep", default=1.0, show_default=True, type=click.FloatRange(0.01, 3600),
                  help="Seconds to wait when nothing is due.")
    @click.option("--json", "as_json", is_flag=True, help="With --once: print one JSON object.")
    @with_appcontext
    def mail_worker(once, batch, idle_sleep, as_json):
        """Send the customers' emails (sign-in links) from the outbox. Run several safely."""
        from .worker import MailWorker

        app = current_app._get_current_object()
        if not smtp_configured(app) and app.config.get("APP_ENV") == "production":
            raise click.ClickException("SMTP_HOST is not set: in production the mail worker sends through SMTP only "
                                       "(emails wait in the outbox until it is set; see docs/deploy.md).")
        worker = MailWorker(app, batch=batch)
        if once:
            result = worker.run_once()
            data = dataclass_dict(result)
            if as_json:
                click.echo(json.dumps(data))
            else:
                click.echo(f"Sent {result.sent} email(s), {result.failed} to retry, {result.skipped} skipped.")
            return
        if not smtp_configured(app):
            click.echo("Note: SMTP_HOST is not set; emails are written to instance/mail/ and the log.", err=True)
        worker.install_signal_handlers()
        worker.run_forever(idle_sleep=idle_sleep)


def dataclass_dict(value) -> dict:
    import dataclasses

    return dataclasses.asdict(value)
