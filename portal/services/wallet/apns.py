"""APNs client for Apple Wallet pass-update pushes.

Protocol (Apple: "Adding a Web Service to Update Passes" and "Sending
notification requests to APNs"):

* HTTP/2 over TLS to ``api.push.apple.com:443``.  Wallet passes always use
  the *production* APNs environment, whatever the app build.
* TLS client-certificate authentication with the *same* Pass Type ID
  certificate and key that sign the passes (no JWT provider token).
* ``POST /3/device/<push token>`` where the push token is the one the device
  sent when it registered the pass with our web service.
* ``apns-topic`` is the pass type identifier (the certificate's UID).
* The payload is an empty JSON dictionary, ``{}``: a pass push carries no
  content, it only tells Wallet "passes of this type changed, ask the web
  service which".  The visible message, if any, comes from ``changeMessage``
  in the updated pass.
* ``apns-push-type``: Apple's Wallet documentation does not name one; APNs
  recommends always sending the header.  We send ``alert`` (overridable),
  as widely deployed pass servers do, with immediate priority (10) — an
  empty payload without ``content-available`` is not a background push.

Responses: 200 with an empty body on success; otherwise a JSON body
``{"reason": "..."}``.  410 (``Unregistered``) and ``BadDeviceToken`` mean the
token must be forgotten; 429 and 5xx are transient.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from dataclasses import dataclass
from typing import Any

import certifi
import httpx

__all__ = [
    "APNS_DEVELOPMENT_URL",
    "APNS_PRODUCTION_URL",
    "ApnsClient",
    "PushResult",
]

APNS_PRODUCTION_URL = "https://api.push.apple.com"
#: Not used by Wallet (passes always use production); here for completeness.
APNS_DEVELOPMENT_URL = "https://api.sandbox.push.apple.com"

#: Reasons that mean "this push token is dead, delete the registration".
GONE_REASONS = frozenset({"Unregistered", "BadDeviceToken"})

# APNs device tokens are hex strings (64 chars today; Apple says not to assume
# a fixed length).  The token comes from the device registration request, i.e.
# from outside, so it is validated before being put into a URL path.
_TOKEN_RE = re.compile(r"^[0-9A-Fa-f]{8,256}$")

_EMPTY_PAYLOAD = b"{}"


@dataclass(frozen=True, slots=True)
class PushResult:
    """Outcome of one push.

    ``status`` is the HTTP status from APNs, or 0 when no response arrived
    (connection refused/reset, TLS failure, timeout).  ``reason`` is APNs'
    ``reason`` string, or a short description of the transport error.
    """

    status: int
    reason: str | None = None
    apns_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def gone(self) -> bool:
        """The token is no longer valid: remove the device registration."""
        return self.status == 410 or self.reason in GONE_REASONS

    @property
    def retryable(self) -> bool:
        """A transient failure: try again later (with backoff)."""
        return self.status == 0 or self.status == 429 or self.status >= 500


def _build_ssl_context(
    cert_path: str,
    key_path: str,
    key_password: str | None,
    verify: str | bool | ssl.SSLContext,
) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        ctx = verify  # caller-supplied: we add our client certificate to it
    elif verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif verify is True:
        ctx = ssl.create_default_context(cafile=certifi.where())
    else:
        ctx = ssl.create_default_context(cafile=verify)
    # APNs requires TLS 1.2 or later.
    if ctx.minimum_version < ssl.TLSVersion.TLSv1_2:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path, password=key_password or None)
    return ctx


class ApnsClient:
    """A reusable HTTP/2 connection to APNs authenticated with the pass certificate.

    Create one per process (or per worker) and reuse it: the TLS handshake and
    the HTTP/2 connection are kept across pushes.  Thread-safe (httpx's
    connection pool is).  Failures never raise from :meth:`push`; they come
    back as a :class:`PushResult`.
    """

    def __init__(
        self,
        base_url: str,
        cert_path: str,
        key_path: str,
        key_password: str | None = None,
        *,
        timeout: float = 10,
        verify: str | bool | ssl.SSLContext = True,
        push_type: str = "alert",
        priority: int = 10,
        expiration_seconds: int | None = 3 * 24 * 3600,
    ) -> None:
        """
        ``verify`` is ``True`` (public CAs, via certifi), ``False``, a CA bundle
        path, or an ``ssl.SSLContext`` (the client certificate is loaded into
        it).  ``expiration_seconds`` asks APNs to store the push that long if
        the device is offline (APNs keeps only the latest one per topic);
        ``None`` omits the ``apns-expiration`` header.
        """
        self.base_url = base_url.rstrip("/")
        self.push_type = push_type
        self.priority = priority
        self.expiration_seconds = expiration_seconds
        ssl_context = _build_ssl_context(cert_path, key_path, key_password, verify)
        # http1=False: APNs only speaks HTTP/2; never fall back silently.
        self._client = httpx.Client(
            http1=False,
            http2=True,
            verify=ssl_context,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
        )

    # -- context manager ----------------------------------------------------------
    def __enter__(self) -> ApnsClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- pushing ----------------------------------------------------------------
    def _headers(self, topic: str) -> dict[str, str]:
        headers = {
            "apns-topic": topic,
            "apns-push-type": self.push_type,
            "apns-priority": str(self.priority),
            "content-type": "application/json",
        }
        if self.expiration_seconds is not None:
            headers["apns-expiration"] = str(int(time.time()) + self.expiration_seconds)
        return headers

    def push(self, push_token: str, topic: str) -> PushResult:
        """Tell the device(s) behind ``push_token`` that passes of ``topic`` changed.

        ``topic`` is the pass type identifier.  Returns a :class:`PushResult`;
        check ``ok``, ``gone`` (delete the registration) and ``retryable``.
        """
        if not isinstance(push_token, str) or not _TOKEN_RE.match(push_token):
            # Never reaches APNs; same answer APNs would give.
            return PushResult(status=400, reason="BadDeviceToken")
        if not topic or any(c in topic for c in "\r\n\x00"):
            return PushResult(status=400, reason="BadTopic")

        url = f"{self.base_url}/3/device/{push_token}"
        headers = self._headers(topic)
        attempts = 2  # one immediate retry on a dropped (stale) connection
        for attempt in range(attempts):
            try:
                response = self._client.post(url, content=_EMPTY_PAYLOAD, headers=headers)
            except httpx.TimeoutException as exc:
                # The request may or may not have reached APNs; a pass push is
                # idempotent, so the caller can safely retry later.
                return PushResult(status=0, reason=f"timeout: {type(exc).__name__}")
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    continue
                return PushResult(status=0, reason=f"connection error: {type(exc).__name__}: {exc}")
            return PushResult(
                status=response.status_code,
                reason=_reason(response),
                apns_id=response.headers.get("apns-id"),
            )
        raise AssertionError("unreachable")  # pragma: no cover


def _reason(response: httpx.Response) -> str | None:
    if response.status_code == 200 or not response.content:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return response.text[:200] or None
    reason = body.get("reason") if isinstance(body, dict) else None
    return str(reason) if reason is not None else None
