"""Building a message and handing it to SMTP (``smtplib``), or, without ``SMTP_HOST``, to ``instance/mail/``."""
from __future__ import annotations

import logging
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from flask import Flask

from .settings import mail_from, setting, smtp_configured

log = logging.getLogger("portal.mail")


def build_message(*, message_id: str, created_at, to_address: str, sender_name: str, subject: str, text: str,
                  html: str, locale: str, app: Flask) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    local, _, domain = mail_from(app).rpartition("@")
    msg["From"] = Address(display_name=sender_name, username=local, domain=domain)
    msg["To"] = to_address
    msg["Date"] = format_datetime(created_at)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    msg["Content-Language"] = locale  # after the parts are made (making them moves Content-* headers down)
    return msg


class PermanentFailure(Exception):
    """The server refused this message for good (5xx): retrying would not help."""


class SmtpTransport:
    """One SMTP connection for a round of messages."""

    def __init__(self, app: Flask):
        self.app = app
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        host = setting("SMTP_HOST", self.app)
        port = int(setting("SMTP_PORT", self.app))
        timeout = float(setting("SMTP_TIMEOUT_SECONDS", self.app))
        if setting("SMTP_SSL", self.app):
            conn = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(host, port, timeout=timeout)
            if setting("SMTP_STARTTLS", self.app):
                conn.starttls(context=ssl.create_default_context())
        username = setting("SMTP_USERNAME", self.app)
        if username:
            conn.login(username, setting("SMTP_PASSWORD", self.app) or "")
        return conn

    def send(self, msg: EmailMessage) -> None:
        """Raises PermanentFailure on a 5xx answer to this message; any other error means "try again later"."""
        if self._conn is None:
            self._conn = self._connect()
        try:
            self._conn.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(code >= 500 for code in codes):
                raise PermanentFailure(f"recipient refused: {codes[0]}") from exc
            raise
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            if exc.smtp_code >= 500:
                raise PermanentFailure(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise

    def reset(self) -> None:
        """After a failure: drop the connection (the next send opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


class FileTransport:
    """Development: each message becomes ``instance/mail/<message>.eml`` and is written to the log."""

    def __init__(self, app: Flask):
        self.folder = Path(app.instance_path) / "mail"

    def send(self, msg: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = msg["Message-ID"].strip("<>").replace("/", "_").replace("@", "_at_")
        path = self.folder / f"{name}.eml"
        path.write_bytes(msg.as_bytes())
        text = msg.get_body(preferencelist=("plain",))
        log.info("mail (SMTP_HOST is not set) to %s: %s — saved as %s\n%s", msg["To"], msg["Subject"], path,
                 text.get_content() if text is not None else "")

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


class NotConfigured(RuntimeError):
    pass


def transport_for(app: Flask):
    """SMTP when ``SMTP_HOST`` is set; else files under ``instance/mail/`` — never in production, where the
    emails wait in the outbox until SMTP is configured."""
    if smtp_configured(app):
        return SmtpTransport(app)
    if app.config.get("APP_ENV") == "production":
        raise NotConfigured("SMTP_HOST is not set: in production emails are only sent through SMTP.")
    return FileTransport(app)
