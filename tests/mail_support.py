"""A real SMTP server in the test process (aiosmtpd on 127.0.0.1 and a free port) and helpers to read what it
received."""
from __future__ import annotations

import email
import re
import threading
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

LINK_RE = re.compile(r"https?://[^\s\"<>]+/s/[A-Za-z0-9_\-]+")


class Sink:
    """The server's handler: keeps every message it accepted."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.lock:
            self.messages.append(message)
        return "250 OK"


class SmtpServer:
    def __init__(self, port: int):
        self.port = port
        self.sink = Sink()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=port)

    def __enter__(self) -> "SmtpServer":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self.sink.lock:
            return list(self.sink.messages)


def smtp_config(port: int) -> dict:
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_STARTTLS": False, "SMTP_TIMEOUT_SECONDS": 5,
            "MAIL_FROM": "cards@loyalty.example.lu"}


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) of a multipart/alternative message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, message
    return text.get_content(), html.get_content()


def link_of(message: EmailMessage) -> str:
    text, html = parts(message)
    links = set(LINK_RE.findall(text))
    assert len(links) == 1, text
    (link,) = links
    assert link in html
    return link
