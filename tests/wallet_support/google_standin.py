"""A loopback stand-in for Google's OAuth token endpoint and the Wallet REST API.

Plain HTTP on 127.0.0.1 (``http.server`` in a thread), which is enough because
the client under test talks to whatever ``token_uri`` / ``api_url`` it is
given.  It implements:

* ``POST /token`` -- the OAuth 2.0 JWT-bearer grant
  (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``).
  The assertion's RS256 signature is verified with ``google.auth.jwt.decode``
  against the public key of a *trusted* service account (see
  :meth:`GoogleStandin.trust_service_account`), its ``aud`` must be Google's
  token URI (what google-auth sends) or this stand-in's, and its ``scope``
  must include ``wallet_object.issuer``.  Answers
  ``{"access_token", "expires_in", "token_type": "Bearer"}``.
* ``/walletobjects/v1/loyaltyClass[/{id}]`` and ``/walletobjects/v1/loyaltyObject[/{id}]``:
  GET (404 for unknown ids), POST insert (409 on a duplicate id), PATCH
  (top-level merge, 404 if missing), PUT (replace).  Every call needs a valid
  ``Authorization: Bearer`` token (else 401).  Objects live in memory.

* ``GET /gp/m/issuer/keys`` -- Google's root signing keys for Wallet callbacks
  (``{"keys": [{"keyValue", "protocolVersion": "ECv2SigningOnly", "keyExpiration"}]}``), from a test root key;
  :meth:`GoogleStandin.signed_callback` makes a callback body signed the way Google signs one
  (ECv2SigningOnly: a root-signed intermediate key, then the message), with knobs to break each part.

Fault modes, as for the APNs stand-in: :meth:`GoogleStandin.set_mode` with
``"ok"``, ``"error"`` (an HTTP error status, 503 by default), ``"hang"`` (the
answer comes after ``hang_seconds``) and ``"down"`` (the connection is closed
without an answer); :meth:`stop` / :meth:`start` reuse the same port.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import re
import secrets
import socket
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.auth import jwt

__all__ = [
    "GoogleStandin",
    "RecordedRequest",
    "make_service_account_file",
    "public_key_pem",
]

WALLET_SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: google-auth always puts Google's token endpoint in the assertion's ``aud``,
#: whatever ``token_uri`` the request is sent to; Google's server accepts that.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"

_RESOURCE_RE = re.compile(r"^/walletobjects/v1/(loyaltyClass|loyaltyObject)(?:/([^/]+))?$")
_ADD_MESSAGE_RE = re.compile(r"^/walletobjects/v1/loyaltyObject/([^/]+)/addMessage$")
#: Google: at most 3 messages with TEXT_AND_NOTIFY per pass in 24 hours; a 4th is refused (QuotaExceeded).
NOTIFY_LIMIT = 3
NOTIFY_WINDOW_SECONDS = 24 * 3600
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


# --------------------------------------------------------------------------- #
# Service account files
# --------------------------------------------------------------------------- #
def make_service_account_file(
    tmpdir: str | Path,
    token_uri: str,
    *,
    client_email: str | None = None,
    project_id: str = "loyalty-wallet-test",
) -> str:
    """Write a service-account JSON key file with a fresh RSA key; return its path."""
    directory = Path(tmpdir)
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    key_id = secrets.token_hex(20)
    email = client_email or f"wallet-{key_id[:6]}@{project_id}.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": email,
        "client_id": str(100000000000000000000 + secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    path = directory / f"service-account-{key_id[:8]}.json"
    path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return str(path)


def public_key_pem(service_account_file: str | Path) -> str:
    """The PEM public key matching a service-account file's private key."""
    info = json.loads(Path(service_account_file).read_text(encoding="utf-8"))
    key = serialization.load_pem_private_key(info["private_key"].encode("ascii"), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


# --------------------------------------------------------------------------- #
# Recording
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    status: int  # 0: connection dropped without an answer
    body: Any  # parsed JSON, the form dict for /token, or None
    authorization: str | None
    received_at: float = field(default_factory=time.monotonic)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], standin: GoogleStandin) -> None:
        self.standin = standin
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, reset) is expected in fault tests.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def drop_all_connections(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    timeout = 30  # idle keep-alive connections end eventually
    # Headers and body are written separately: with Nagle's algorithm the body waits for the client's delayed ACK
    # (≈ 40 ms a response on Linux), which no real server makes a client wait.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        standin = self.server.standin
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        authorization = self.headers.get("Authorization")

        mode, hang_seconds, error_status = standin._mode_for(path)
        if mode == "down":
            standin._record(RecordedRequest(method, path, 0, None, authorization))
            self.close_connection = True
            return
        if mode == "hang":
            standin._release_hangs.wait(hang_seconds)
            if standin._stopping.is_set():
                self.close_connection = True
                return
        if mode == "error":
            status, payload = error_status, _error(error_status, "stand-in is failing on purpose")
            standin._record(RecordedRequest(method, path, status, None, authorization))
        elif _ADD_MESSAGE_RE.match(path):
            status, payload, parsed = standin._add_message(method, path, raw, authorization)
            standin._record(RecordedRequest(method, path, status, parsed, authorization))
        elif path == "/token":
            status, payload, form = standin._token(method, raw)
            standin._record(RecordedRequest(method, path, status, form, authorization))
        elif path == CALLBACK_KEYS_PATH and method == "GET":
            status, payload = 200, standin.callback_keys.keys_document()
            standin._record(RecordedRequest(method, path, status, None, authorization))
        else:
            status, payload, parsed = standin._resource(method, path, raw, authorization)
            standin._record(RecordedRequest(method, path, status, parsed, authorization))
        self._send(status, payload)

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}


# --------------------------------------------------------------------------- #
# Stand-in
# --------------------------------------------------------------------------- #
class GoogleStandin:
    """Loopback OAuth token endpoint + Google Wallet REST API. Use as a context manager."""

    MODES = ("ok", "error", "hang", "down")

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: int = 3600,
        hang_seconds: float = 30.0,
        issuer_id: str | None = None,
        require_class: bool = True,
    ) -> None:
        """``issuer_id``: if set, resource ids must start with ``"<issuer_id>."`` (else 403).
        ``require_class``: object inserts need an existing ``classId`` (else 400)."""
        self.host = host
        self.port = port
        self.token_lifetime = token_lifetime
        self.hang_seconds = hang_seconds
        self.issuer_id = issuer_id
        self.require_class = require_class
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._accounts: dict[str, str] = {}  # private_key_id -> public key PEM
        self._emails: set[str] = set()
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (email, expiry)
        self._store: dict[str, dict[str, dict[str, Any]]] = {"loyaltyClass": {}, "loyaltyObject": {}}
        self._requests: list[RecordedRequest] = []
        self._notifications: dict[str, list[float]] = {}  # object id -> times of TEXT_AND_NOTIFY messages
        self._mode = "ok"
        self._error_status = 503
        self._faults_on_token_endpoint = True
        self._stopping = threading.Event()
        self._release_hangs = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.callback_keys = CallbackKeys()

    # -- lifecycle ------------------------------------------------------------------
    def __enter__(self) -> GoogleStandin:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def callback_keys_url(self) -> str:
        return f"{self.url}{CALLBACK_KEYS_PATH}"

    def signed_callback(self, message: dict[str, Any], **options: Any) -> bytes:
        """A callback body for ``message`` signed like Google's, recipient = this stand-in's issuer id
        (see :meth:`CallbackKeys.sign`)."""
        options.setdefault("recipient_id", self.issuer_id or "")
        return self.callback_keys.sign(message, **options)

    def start(self) -> None:
        if self._server is not None:
            return
        self._stopping.clear()
        self._release_hangs.clear()
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="google-standin", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and drop open connections (clients see refusals/resets)."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        self._release_hangs.set()
        server.shutdown()
        server.drop_all_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- accounts and tokens --------------------------------------------------------------
    def trust_service_account(self, service_account_file: str | Path) -> None:
        """Accept token requests signed by this service account's key."""
        info = json.loads(Path(service_account_file).read_text(encoding="utf-8"))
        with self._lock:
            self._accounts[info["private_key_id"]] = public_key_pem(service_account_file)
            self._emails.add(info["client_email"])

    def make_service_account(self, tmpdir: str | Path, **kwargs: Any) -> str:
        """Create a service-account file pointing at this stand-in and trust it."""
        path = make_service_account_file(tmpdir, self.token_uri, **kwargs)
        self.trust_service_account(path)
        return path

    def revoke_tokens(self) -> None:
        """Invalidate every issued access token (clients must fetch a new one)."""
        with self._lock:
            self._tokens.clear()

    # -- fault injection ----------------------------------------------------------------
    def set_mode(
        self,
        mode: str,
        *,
        status: int | None = None,
        hang_seconds: float | None = None,
        include_token_endpoint: bool = True,
    ) -> None:
        """Switch behaviour: "ok", "error" (status, default 503), "hang", "down".

        With ``include_token_endpoint=False`` the fault applies only to the
        REST resources and ``/token`` keeps working.
        """
        if mode not in self.MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {self.MODES}")
        with self._lock:
            if mode == "error":
                self._error_status = status or 503
            if hang_seconds is not None:
                self.hang_seconds = hang_seconds
            self._faults_on_token_endpoint = include_token_endpoint
            self._mode = mode
        if mode == "hang":
            self._release_hangs.clear()
        else:
            self._release_hangs.set()

    @property
    def mode(self) -> str:
        return self._mode

    def _mode_for(self, path: str) -> tuple[str, float, int]:
        with self._lock:
            mode = self._mode
            if path == "/token" and not self._faults_on_token_endpoint:
                mode = "ok"
            return mode, self.hang_seconds, self._error_status

    # -- inspection -------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def token_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/token"]

    @property
    def classes(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._store["loyaltyClass"]))

    @property
    def objects(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._store["loyaltyObject"]))

    def calls(self, method: str, resource: str, *, status: int | None = None) -> list[RecordedRequest]:
        """Recorded calls to ``resource`` ("loyaltyClass"/"loyaltyObject") with ``method``."""
        prefix = f"/walletobjects/v1/{resource}"
        return [
            r
            for r in self.requests
            if r.method == method
            and (r.path == prefix or r.path.startswith(prefix + "/"))
            and (status is None or r.status == status)
        ]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"Google stand-in: expected {n} requests within {timeout}s, got {len(self._requests)}"
                    )
                self._changed.wait(remaining)
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._changed.notify_all()

    # -- request handling (called from handler threads) ---------------------------------
    def _token(self, method: str, raw: bytes) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        if method != "POST":
            return 405, {"error": "invalid_request", "error_description": "POST required"}, None
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return 400, {"error": "unsupported_grant_type"}, form
        assertion = form.get("assertion", "")
        with self._lock:
            keys = dict(self._accounts)
            emails = set(self._emails)
        try:
            claims = jwt.decode(assertion, certs=keys, audience=[self.token_uri, GOOGLE_TOKEN_AUDIENCE])
        except Exception as exc:  # noqa: BLE001 - any failure is an invalid grant
            return 400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}, form
        if claims.get("iss") not in emails:
            return 400, {"error": "invalid_grant", "error_description": "Invalid issuer"}, form
        scopes = str(claims.get("scope", "")).split()
        if WALLET_SCOPE not in scopes:
            return 400, {"error": "invalid_scope", "error_description": f"scope must include {WALLET_SCOPE}"}, form
        token = "ya29.standin-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (claims["iss"], time.time() + self.token_lifetime)
        return 200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}, form

    def _authorized(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization[len("Bearer "):].strip()
        with self._lock:
            entry = self._tokens.get(token)
        return entry is not None and entry[1] > time.time()

    def _resource(
        self, method: str, path: str, raw: bytes, authorization: str | None
    ) -> tuple[int, dict[str, Any], Any]:
        match = _RESOURCE_RE.match(path)
        if match is None:
            return 404, _error(404, f"No such API path: {path}"), None
        if not self._authorized(authorization):
            return 401, _error(401, "Request had invalid authentication credentials."), None
        kind, quoted_id = match.group(1), match.group(2)
        resource_id = unquote(quoted_id) if quoted_id is not None else None

        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return 400, _error(400, "Invalid JSON payload received."), None
            if not isinstance(body, dict):
                return 400, _error(400, "Invalid JSON payload received."), body

        with self._lock:
            store = self._store[kind]
            if resource_id is None:
                if method == "GET":
                    items = list(store.values())
                    return 200, {"resources": items, "pagination": {"resultsPerPage": len(items)}}, None
                if method != "POST":
                    return 405, _error(405, f"{method} not allowed here"), body
                new_id = (body or {}).get("id")
                if not isinstance(new_id, str) or not new_id:
                    return 400, _error(400, "Resource id is required."), body
                problem = self._check_id(new_id)
                if problem:
                    return 403, _error(403, problem), body
                if new_id in store:
                    return 409, _error(409, f"Resource already exists: {new_id}"), body
                if kind == "loyaltyObject" and self.require_class:
                    class_id = body.get("classId")
                    if class_id not in self._store["loyaltyClass"]:
                        return 400, _error(400, f"Class {class_id!r} does not exist."), body
                stored = {"kind": f"walletobjects#{kind}", **json.loads(json.dumps(body))}
                store[new_id] = stored
                return 200, stored, body

            existing = store.get(resource_id)
            if existing is None:
                return 404, _error(404, f"Resource not found: {resource_id}"), body
            if method == "GET":
                return 200, existing, None
            if method in ("PATCH", "PUT"):
                if body is None:
                    return 400, _error(400, "Request body required."), body
                if body.get("id", resource_id) != resource_id:
                    return 400, _error(400, "The id in the body does not match the URL."), body
                if method == "PUT":
                    updated = {"kind": f"walletobjects#{kind}", **json.loads(json.dumps(body))}
                else:
                    updated = {**existing, **json.loads(json.dumps(body))}
                updated["id"] = resource_id
                store[resource_id] = updated
                return 200, updated, body
            return 405, _error(405, f"{method} not allowed here"), body

    def _add_message(self, method: str, path: str, raw: bytes, authorization: str | None
                     ) -> tuple[int, dict[str, Any], Any]:
        """``POST loyaltyObject/{id}/addMessage`` ``{"message": {...}}``: the message joins the object's
        ``messages``; a ``TEXT_AND_NOTIFY`` beyond 3 in 24 h (``time.time()``) is refused with 429, as Google
        refuses it with a QuotaExceeded error."""
        if method != "POST":
            return 405, _error(405, f"{method} not allowed here"), None
        if not self._authorized(authorization):
            return 401, _error(401, "Request had invalid authentication credentials."), None
        resource_id = unquote(_ADD_MESSAGE_RE.match(path).group(1))
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return 400, _error(400, "Invalid JSON payload received."), None
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict) or message.get("messageType", "TEXT") not in ("TEXT", "TEXT_AND_NOTIFY"):
            return 400, _error(400, "A message with messageType TEXT or TEXT_AND_NOTIFY is required."), body
        with self._lock:
            existing = self._store["loyaltyObject"].get(resource_id)
            if existing is None:
                return 404, _error(404, f"Resource not found: {resource_id}"), body
            now = time.time()
            sent = self._notifications.setdefault(resource_id, [])
            if message.get("messageType") == "TEXT_AND_NOTIFY":
                if len([t for t in sent if now - t < NOTIFY_WINDOW_SECONDS]) >= NOTIFY_LIMIT:
                    return 429, _error(429, "QuotaExceededException: too many notifications for this pass"), body
                sent.append(now)
            existing.setdefault("messages", []).append(json.loads(json.dumps(message)))
            return 200, {"resource": existing}, body

    def messages(self, object_id: str) -> list[dict[str, Any]]:
        """The messages added to an object (``addMessage``), oldest first."""
        with self._lock:
            return json.loads(json.dumps(self._store["loyaltyObject"].get(object_id, {}).get("messages", [])))

    def _check_id(self, resource_id: str) -> str | None:
        if self.issuer_id and not resource_id.startswith(f"{self.issuer_id}."):
            return f"The caller does not have permission for issuer of {resource_id!r}."
        return None

    def new_object_id(self, prefix: str | None = None) -> str:
        """A fresh ``<issuer>.<uuid>`` id (uses ``issuer_id`` or ``prefix``)."""
        return f"{prefix or self.issuer_id or '3388000000000000000'}.{uuid.uuid4().hex}"


# --------------------------------------------------------------------------- #
# Wallet callbacks: Google's side of ECv2SigningOnly
# --------------------------------------------------------------------------- #
CALLBACK_KEYS_PATH = "/gp/m/issuer/keys"
CALLBACK_SENDER_ID = "GooglePayPasses"
CALLBACK_PROTOCOL = "ECv2SigningOnly"


def _lv(*chunks: str) -> bytes:
    """Each chunk as a 4-byte little-endian length and its UTF-8 bytes (Tink's ``toLengthValue``)."""
    return b"".join(struct.pack("<I", len(b)) + b for b in (c.encode("utf-8") for c in chunks))


def _spki_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def _sign_b64(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode("ascii")


class CallbackKeys:
    """A test root key (published at ``/gp/m/issuer/keys``) and intermediate keys signed with it."""

    def __init__(self, root_lifetime_ms: int = 365 * 24 * 3600 * 1000) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root_expiration_ms = int(time.time() * 1000) + root_lifetime_ms

    def keys_document(self) -> dict[str, Any]:
        return {"keys": [{"keyValue": _spki_b64(self.root_key), "protocolVersion": CALLBACK_PROTOCOL,
                          "keyExpiration": str(self.root_expiration_ms)}]}

    def sign(self, message: dict[str, Any], *, recipient_id: str, intermediate_expiration_ms: int | None = None,
             root_key: ec.EllipticCurvePrivateKey | None = None, tamper: bool = False) -> bytes:
        """The callback body. ``intermediate_expiration_ms``: when the intermediate key expires (default in an
        hour); ``root_key``: sign the intermediate key with another root (not the published one); ``tamper``:
        change the message after signing it."""
        intermediate = ec.generate_private_key(ec.SECP256R1())
        expiration = intermediate_expiration_ms or int(time.time() * 1000) + 3600 * 1000
        signed_key = json.dumps({"keyValue": _spki_b64(intermediate), "keyExpiration": str(expiration)},
                                separators=(",", ":"))
        signed_message = json.dumps(message, separators=(",", ":"))
        body = {
            "signature": _sign_b64(intermediate, _lv(CALLBACK_SENDER_ID, recipient_id, CALLBACK_PROTOCOL,
                                                     signed_message)),
            "intermediateSigningKey": {
                "signedKey": signed_key,
                "signatures": [_sign_b64(root_key or self.root_key,
                                         _lv(CALLBACK_SENDER_ID, CALLBACK_PROTOCOL, signed_key))],
            },
            "protocolVersion": CALLBACK_PROTOCOL,
            "signedMessage": signed_message[:-1] + ',"count":99}' if tamper else signed_message,
        }
        return json.dumps(body).encode("utf-8")
