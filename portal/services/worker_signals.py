"""SIGTERM / SIGINT for the outbox workers (wallet and mail): finish the current round, then stop."""
from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def stop_on_signals(stop: Callable[[], None], name: str) -> None:
    """Call ``stop`` when the process gets SIGTERM or SIGINT.

    The handler runs in the main thread between two bytecodes, possibly while that thread holds the lock of the
    ``threading.Event`` that ``stop`` sets (inside ``Event.wait``): setting it there would wait for that lock
    forever (a worker seen ignoring SIGTERM for ten minutes). So the handler only starts a thread that sets it.
    """
    def stop_soon() -> None:
        log.info("%s: stopping after the current round", name)
        stop()

    def handler(signum, frame) -> None:  # noqa: ARG001
        threading.Thread(target=stop_soon, name=f"{name}-stop", daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
