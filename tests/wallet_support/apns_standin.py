"""A loopback APNs stand-in: HTTP/2 over mutual TLS, built on ``h2`` + ``ssl``.

Behaves like ``api.push.apple.com`` for what a Wallet pass server does:

* TLS 1.2+, ALPN ``h2`` only, and a client certificate is *required*; it must
  chain to the test root (the WWDR intermediate is trusted as well so a bare
  pass certificate is enough, as with Apple);
* ``POST /3/device/<token>`` with ``apns-topic``; the topic must equal the
  client certificate's UID (pass type id), else 400 ``TopicDisallowed``;
* answers 200 with an ``apns-id`` header, or an error status with a JSON body
  ``{"reason": "..."}``.

Every request that reaches the HTTP/2 layer is recorded (thread-safe) in
:attr:`ApnsStandin.pushes`.  Fault injection for outage tests:

* per token: :meth:`ApnsStandin.unregister` -> 410 ``{"reason":"Unregistered"}``
  (or any status/reason);
* :meth:`ApnsStandin.set_mode`: ``"ok"``; ``"error"`` (every request gets
  500 ``InternalServerError`` or a chosen status); ``"hang"`` (requests are read
  and recorded but answered only after ``hang_seconds``); ``"down"`` (every
  connection, existing or new, is closed without a response);
* :meth:`stop` / :meth:`start` close and reopen the listener on the same port.

Threads: one acceptor thread plus one thread per connection; each connection
thread owns its ``h2`` state machine, so no locking is needed for it.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from .ca import TestPki

__all__ = ["ApnsStandin", "RecordedPush"]

_POLL = 0.05  # seconds; how quickly threads notice stop/mode changes


@dataclass(frozen=True)
class RecordedPush:
    """One request received by the stand-in."""

    token: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_subject: dict[str, str]
    http_version: str
    status: int  # what the stand-in decided to answer (0: never answered)
    received_at: float = field(default_factory=time.monotonic)

    @property
    def topic(self) -> str | None:
        return self.headers.get("apns-topic")

    def json(self) -> Any:
        return json.loads(self.body)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _subject_dict(peercert: dict[str, Any] | None) -> dict[str, str]:
    """Flatten ``SSLSocket.getpeercert()['subject']`` into {attr: value}."""
    result: dict[str, str] = {}
    if not peercert:
        return result
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            result[key] = value
    return result


class _Connection:
    """State of one client connection, driven by its own thread."""

    def __init__(self, standin: ApnsStandin, sock: socket.socket, address: Any) -> None:
        self.standin = standin
        self.raw = sock
        self.address = address
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"apns-standin-conn-{address}", daemon=True)

    def close(self) -> None:
        """Ask the connection thread to drop the connection, and wake it up."""
        self.closed.set()
        with suppress(OSError):
            # The plain-socket shutdown (not SSLSocket.shutdown, which would
            # tear down the TLS object under the reading thread's feet).
            socket.socket.shutdown(self.raw, socket.SHUT_RDWR)

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.closed.set()
            with suppress(OSError):
                self.raw.close()
            self.standin._forget(self)

    def _run(self) -> None:
        standin = self.standin
        if standin._mode == "down":
            return  # accept, then drop: the client sees a reset/EOF
        self.raw.settimeout(5)
        try:
            tls = standin._ssl_context.wrap_socket(self.raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            standin._record_handshake_failure(f"{type(exc).__name__}: {exc}")
            return
        self.raw = tls  # so close() closes the TLS socket
        if tls.selected_alpn_protocol() != "h2":
            standin._record_handshake_failure("client did not negotiate h2 via ALPN")
            return
        subject = _subject_dict(tls.getpeercert())
        tls.settimeout(_POLL)

        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())

        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        delayed: list[tuple[float, int, int, dict[str, str], bytes]] = []

        while not self.closed.is_set() and not standin._stopping.is_set():
            if standin._mode == "down":
                return
            now = time.monotonic()
            due = [d for d in delayed if d[0] <= now or standin._release_hangs.is_set()]
            for item in due:
                delayed.remove(item)
                _, stream_id, status, headers, body = item
                self._respond(conn, stream_id, status, headers, body)
            if due:
                tls.sendall(conn.data_to_send())
            try:
                data = tls.recv(65535)
            except (TimeoutError, socket.timeout):
                continue
            except ssl.SSLWantReadError:
                continue
            except (ssl.SSLError, OSError):
                return
            if not data:
                return
            if standin._mode == "down" or self.closed.is_set():
                return  # drop the request unanswered
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                with suppress(OSError):
                    tls.sendall(conn.data_to_send())
                return
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    # header_encoding="utf-8" makes h2 hand us str pairs.
                    header_map = {_text(k): _text(v) for k, v in event.headers or ()}
                    streams[event.stream_id] = (header_map, bytearray())
                elif isinstance(event, h2.events.DataReceived):
                    if event.stream_id in streams:
                        streams[event.stream_id][1].extend(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    headers, received = streams.pop(event.stream_id, ({}, bytearray()))
                    status, resp_headers, resp_body, hang = standin._handle(
                        headers, bytes(received), subject
                    )
                    if hang is not None:
                        delayed.append((time.monotonic() + hang, event.stream_id, status, resp_headers, resp_body))
                    else:
                        self._respond(conn, event.stream_id, status, resp_headers, resp_body)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    with suppress(OSError):
                        tls.sendall(conn.data_to_send())
                    return
            try:
                tls.sendall(conn.data_to_send())
            except OSError:
                return

    @staticmethod
    def _respond(
        conn: h2.connection.H2Connection,
        stream_id: int,
        status: int,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        response_headers = [(":status", str(status))] + list(headers.items())
        if body:
            response_headers += [("content-type", "application/json"), ("content-length", str(len(body)))]
        try:
            conn.send_headers(stream_id, response_headers, end_stream=not body)
            if body:
                conn.send_data(stream_id, body, end_stream=True)
        except h2.exceptions.StreamClosedError:
            pass  # the client gave up (e.g. timed out and reset the stream)


class ApnsStandin:
    """Loopback APNs. Use as a context manager; ``.url`` is ``https://127.0.0.1:PORT``."""

    MODES = ("ok", "error", "hang", "down")

    def __init__(
        self,
        pki: TestPki,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hang_seconds: float = 30.0,
    ) -> None:
        self.pki = pki
        self.host = host
        self.port = port
        self.hang_seconds = hang_seconds
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pushes: list[RecordedPush] = []
        self._handshake_failures: list[str] = []
        self._token_answers: dict[str, tuple[int, str]] = {}
        self._mode = "ok"
        self._error_status = 500
        self._error_reason = "InternalServerError"
        self._connections: set[_Connection] = set()
        self._connections_accepted = 0
        self._stopping = threading.Event()
        self._release_hangs = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(pki.server_cert, pki.server_key)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=pki.root_ca)
        ctx.load_verify_locations(cafile=pki.wwdr_cert)
        ctx.set_alpn_protocols(["h2"])
        self._ssl_context = ctx

    # -- lifecycle ------------------------------------------------------------------
    def __enter__(self) -> ApnsStandin:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> None:
        """Listen (again) -- on the same port after a :meth:`stop`."""
        if self._listener is not None:
            return
        self._stopping.clear()
        self._release_hangs.clear()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        sock.settimeout(_POLL)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._acceptor = threading.Thread(target=self._accept_loop, args=(sock,), name="apns-standin-accept", daemon=True)
        self._acceptor.start()

    def stop(self) -> None:
        """Close the listener and every connection (clients see resets/refusals)."""
        if self._listener is None:
            return
        self._stopping.set()
        self._release_hangs.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        with suppress(OSError):
            self._listener.close()
        self._listener = None
        self._acceptor = None
        for connection in self._snapshot_connections():
            connection.close()
        for connection in self._snapshot_connections():
            connection.thread.join(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                sock, address = listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            connection = _Connection(self, sock, address)
            with self._lock:
                self._connections.add(connection)
                self._connections_accepted += 1
            connection.thread.start()

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _snapshot_connections(self) -> list[_Connection]:
        with self._lock:
            return list(self._connections)

    # -- fault injection ----------------------------------------------------------------
    def set_mode(
        self,
        mode: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        hang_seconds: float | None = None,
    ) -> None:
        """Switch behaviour: "ok", "error" (status/reason), "hang" (hang_seconds), "down"."""
        if mode not in self.MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {self.MODES}")
        with self._lock:
            if mode == "error":
                self._error_status = status or 500
                self._error_reason = reason or (
                    "ServiceUnavailable" if self._error_status == 503 else "InternalServerError"
                )
            if hang_seconds is not None:
                self.hang_seconds = hang_seconds
            self._mode = mode
        if mode == "down":
            for connection in self._snapshot_connections():
                connection.close()
        if mode != "hang":
            self._release_hangs.set()  # answer anything still held
        else:
            self._release_hangs.clear()

    @property
    def mode(self) -> str:
        return self._mode

    def unregister(self, token: str, *, status: int = 410, reason: str = "Unregistered") -> None:
        """Answer every future push to ``token`` with ``status`` / ``reason``."""
        with self._lock:
            self._token_answers[token] = (status, reason)

    def reregister(self, token: str) -> None:
        with self._lock:
            self._token_answers.pop(token, None)

    # -- inspection -------------------------------------------------------------------
    @property
    def pushes(self) -> list[RecordedPush]:
        with self._lock:
            return list(self._pushes)

    @property
    def handshake_failures(self) -> list[str]:
        with self._lock:
            return list(self._handshake_failures)

    @property
    def connections_accepted(self) -> int:
        with self._lock:
            return self._connections_accepted

    def __iter__(self) -> Iterator[RecordedPush]:
        return iter(self.pushes)

    def clear(self) -> None:
        with self._lock:
            self._pushes.clear()
            self._handshake_failures.clear()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[RecordedPush]:
        """Block until at least ``n`` pushes were recorded; return them.

        Raises ``AssertionError`` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._pushes) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"APNs stand-in: expected {n} pushes within {timeout}s, got {len(self._pushes)}"
                    )
                self._changed.wait(remaining)
            return list(self._pushes)

    # -- request handling (called from connection threads) -------------------------------
    def _record_handshake_failure(self, message: str) -> None:
        with self._lock:
            self._handshake_failures.append(message)

    def _handle(
        self, headers: dict[str, str], body: bytes, subject: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes, float | None]:
        """Decide the answer to one request: (status, headers, body, hang delay or None)."""
        method = headers.get(":method", "")
        path = headers.get(":path", "")
        token = path[len("/3/device/"):] if path.startswith("/3/device/") else ""
        apns_id = headers.get("apns-id") or str(uuid.uuid4()).upper()
        response_headers = {"apns-id": apns_id}

        with self._lock:
            mode = self._mode
            status, reason = self._decide(method, path, token, headers, body, subject, mode)
            hang = self.hang_seconds if mode == "hang" else None
            self._pushes.append(
                RecordedPush(
                    token=token,
                    method=method,
                    path=path,
                    headers={k: v for k, v in headers.items() if not k.startswith(":")},
                    body=body,
                    client_subject=dict(subject),
                    http_version="HTTP/2",
                    status=status,
                )
            )
            self._changed.notify_all()

        payload = b""
        if reason is not None:
            answer: dict[str, Any] = {"reason": reason}
            if status == 410:
                answer["timestamp"] = int(time.time() * 1000)
            payload = json.dumps(answer).encode()
        return status, response_headers, payload, hang

    def _decide(
        self,
        method: str,
        path: str,
        token: str,
        headers: dict[str, str],
        body: bytes,
        subject: dict[str, str],
        mode: str,
    ) -> tuple[int, str | None]:
        if mode == "error":
            return self._error_status, self._error_reason
        if method != "POST":
            return 405, "MethodNotAllowed"
        if not token or "/" in token:
            return 404, "BadPath"
        topic = headers.get("apns-topic")
        if not topic:
            return 400, "MissingTopic"
        if topic != subject.get("userId"):
            # With certificate auth, a Pass Type ID certificate may only push to its own topic.
            return 400, "TopicDisallowed"
        if not body:
            return 400, "PayloadEmpty"
        try:
            json.loads(body)
        except ValueError:
            return 400, "BadPayload"
        answer = self._token_answers.get(token)
        if answer is not None:
            return answer
        return 200, None
