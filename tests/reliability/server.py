"""The real app under gunicorn in a subprocess, for the reliability tests (not a test module).

Configured only through environment variables, as in production: DATABASE_URL (the test's own database),
SECRET_KEY and PIN_PEPPER identical to the test app's (so PINs created by the factories verify), BCRYPT_ROUNDS=4.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import TEST_CONFIG, free_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


class Gunicorn:
    def __init__(self, database_url: str, tmp_path: Path, *, workers: int = 4, threads: int = 1,
                 env: dict | None = None, name: str = "app"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"gunicorn-{name}-{self.port}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN", "FLASK_"))}
        self.env.update({
            "DATABASE_URL": database_url,
            "SECRET_KEY": TEST_CONFIG["SECRET_KEY"],
            "PIN_PEPPER": TEST_CONFIG["PIN_PEPPER"],
            "BCRYPT_ROUNDS": "4",
            "PUBLIC_BASE_URL": self.url,
            "LOG_LEVEL": "INFO",
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        self.env.update(env or {})
        self.cmd = [GUNICORN, "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{self.port}",
                    "--timeout", "60", "--graceful-timeout", "5", "--preload", "--log-level", "info",
                    "--capture-output", "wsgi:app"]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Gunicorn":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=str(ROOT), env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                r = httpx.get(self.url + "/api/v1/loyalty/programs/no-such-program", timeout=5)
                if r.status_code == 404:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not start:\n" + self.log()[-3000:])

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def parallel(calls) -> list:
    """Run the zero-argument callables at once, one thread each (a barrier lines them up)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    threads = len(calls)
    barrier = threading.Barrier(threads)

    def run(fn):
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass
        return fn()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, calls))
