"""SIGTERM reaches a worker whatever its main thread is doing (portal/services/worker_signals.py)."""
from __future__ import annotations

import subprocess
import sys

# The signal lands while the main thread holds the stop event's lock, the moment inside ``Event.wait`` where a
# handler that set the event itself would wait for that lock forever. The private ``_cond`` is touched only here,
# to put the thread in that state on purpose; the child runs with a timeout so a hang fails instead of blocking.
CHILD = """
import os, signal, sys, threading
from portal.services.worker_signals import stop_on_signals

stop = threading.Event()
stop_on_signals(stop.set, "test worker")
with stop._cond:
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):  # bytecodes to run the handler on
        pass
sys.exit(0 if stop.wait(10) else 3)
"""


def test_sigterm_while_the_stop_event_is_locked_stops_the_worker():
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_both_workers_install_the_same_handler(app):
    import signal

    from portal.services.mail.worker import MailWorker
    from portal.services.wallet.worker import WalletWorker

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        for worker_class in (WalletWorker, MailWorker):
            worker_class(app).install_signal_handlers()
            handler = signal.getsignal(signal.SIGTERM)
            assert handler.__module__ == "portal.services.worker_signals"
            assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGINT, before[1])
