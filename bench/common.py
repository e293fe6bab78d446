"""Shared helpers for the benchmarks: a private database, seed data, a gunicorn process, wrk.

Not part of the test suite. Every benchmark measures its own baseline in the same run and prints the ratio.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
PG_ADMIN = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

SECRET = "bench-secret-key-0123456789-0123456789-abcdef"
PEPPER = "bench-pin-pepper-0123456789-0123456789-abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


@contextmanager
def database(kind: str, name: str, keep: bool = False):
    """A fresh migrated database: ``kind`` is "pg" or "sqlite". Yields its URL; dropped afterwards."""
    from sqlalchemy import create_engine, text

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    if kind == "pg":
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = pg_url(name)
    else:
        url = f"sqlite:///{tmp / (name + '.sqlite3')}"
    try:
        migrate(url, tmp)
        yield url
    finally:
        if kind == "pg" and not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


def app_env(url: str, **extra) -> dict:
    env = dict(os.environ)
    env.update({"DATABASE_URL": url, "SECRET_KEY": SECRET, "PIN_PEPPER": PEPPER, "BCRYPT_ROUNDS": "12",
                "LOG_LEVEL": "WARNING", "APP_ENV": "development", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def make_app(url: str, instance: Path | None = None, **config):
    from portal import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "PIN_PEPPER": PEPPER, "BCRYPT_ROUNDS": 12,
                      "RATELIMIT_ENABLED": False, "LOG_LEVEL": "WARNING", **config})
    if instance is not None:
        app.instance_path = str(instance)
    return app


def migrate(url: str, instance: Path) -> None:
    from flask_migrate import upgrade

    from portal.extensions import db

    app = make_app(url, instance)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


def seed_stamp_shop(url: str, *, cards: int = 2000, pins: int = 1, require_pin: bool = False,
                    bcrypt_rounds: int = 12, label: str = "bench") -> dict:
    """A vendor, a stamp program without cooldown or daily limit, ``cards`` cards, ``pins`` staff PINs and an API
    key. Returns the plaintexts needed to drive it."""
    from portal.extensions import db
    from portal.services import accounts, cards as card_svc, pins as pin_svc, programs

    app = make_app(url, BCRYPT_ROUNDS=bcrypt_rounds)
    with app.app_context():
        vendor, owner = accounts.create_vendor(name=f"Shop {label}", owner_email=f"owner-{label}@bench.test",
                                               owner_password="bench-password-1")
        db.session.commit()
        actor = accounts.actor_for_user(owner)
        program = programs.create_program(actor, {"type": "stamps", "name": "Bench card", "stamps_required": 10,
                                                   "reward_text": "Coffee", "require_pin": require_pin,
                                                   "cooldown_minutes": 0, "daily_stamp_limit": 0})
        db.session.commit()
        plain_pins = []
        for i in range(pins):
            row, plain = pin_svc.create_pin(actor, program.id, {"staff_name": f"Staff {i}",
                                                               "pin": f"{1000 + i * 7:04d}"})
            plain_pins.append(plain)
        db.session.commit()
        numbers = []
        for i in range(cards):
            card, _ = card_svc.enroll_by_vendor(actor, {"program_id": program.id, "name": f"Customer {i}",
                                                        "email": f"c{i}-{label}@bench.test"})
            numbers.append(card.card_number)
            if i % 500 == 0:
                db.session.commit()
        db.session.commit()
        _, key = accounts.create_api_key(vendor=vendor, name="bench")
        db.session.commit()
        result = {"program_id": program.id, "cards": numbers, "pins": plain_pins, "key": key}
        db.session.remove()
        db.engine.dispose()
    return result


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


@contextmanager
def gunicorn(app_spec: str, env: dict, *, workers: int = 4, worker_class: str = "sync", threads: int = 1,
             cwd: Path = ROOT, preload: bool = True):
    """gunicorn on a free loopback port. ``--preload``: the app is imported once in the master and forked (as in
    docs/deploy.md), so workers are ready at once instead of each importing the app under load."""
    port = free_port()
    cmd = [GUNICORN, "-w", str(workers), "-k", worker_class, "--threads", str(threads), "-b", f"127.0.0.1:{port}",
           "--log-level", os.environ.get("BENCH_GUNICORN_LOG", "warning"), "--timeout", "60"] + (["--preload"] if preload else []) + [app_spec]
    log = tempfile.NamedTemporaryFile("w+b", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdout=subprocess.DEVNULL, stderr=log,
                            start_new_session=True)
    try:
        wait_for_port(port)
        time.sleep(0.5)
        yield port, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        err = log.read().decode(errors="replace")
        log.close()
        os.unlink(log.name)
        if "Traceback" in err or "WORKER" in err.upper() and "TIMEOUT" in err.upper() or os.environ.get("BENCH_SHOW_LOG"):
            print("gunicorn log (tail):\n" + err[-4000:], file=sys.stderr)


def cpu_seconds(pgid: int | None = None, comm: str | None = None) -> float:
    """CPU time (user + system) used so far by the processes of process group ``pgid`` (a gunicorn started by
    :func:`gunicorn`: master and workers), or by every process named ``comm`` (``postgres``: the database server)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                head, _, rest = fh.read().rpartition(")")
            fields = rest.split()
            if (pgid is not None and int(fields[2]) == pgid) or (comm is not None and head.endswith("(" + comm)):
                total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


WRK_RE = re.compile(r"Requests/sec:\s+([\d.]+)")
LAT_RE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
STATUS_RE = re.compile(r"^STATUS (\d+) (\d+)$", re.M)


def run_wrk(url: str, lua: str, *, seconds: int = 15, threads: int = 2, connections: int = 8,
            warmup: int = 4) -> dict:
    """wrk for ``seconds`` after ``warmup`` seconds of the same load (workers import the app lazily, bcrypt once
    per process, SQLAlchemy compiles its statements once): only the steady state is reported."""
    if warmup:
        run_wrk(url, lua, seconds=warmup, threads=threads, connections=connections, warmup=0)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua)
        script = fh.name
    try:
        out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
                              "--timeout", "10s",
                              "-s", script, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(script)
    match = WRK_RE.search(out)
    rps = float(match.group(1)) if match else 0.0
    lat = {}
    for pct, value, unit in LAT_RE.findall(out):
        lat[pct] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    statuses = {int(c): int(n) for c, n in STATUS_RE.findall(out)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "socket_errors": errors.group(1) if errors else "", "latency_ms": lat, "statuses": statuses, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "raw": out}


def lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stamp_lua(numbers: list[str], key: str, pin: str | None = None, path_tmpl="/api/v1/vendor/loyalty/cards/%s/stamps") -> str:
    """A wrk script POSTing one stamp per request, cycling card numbers, counting statuses per thread."""
    body = '{"count": 1' + (f', "staff_pin": "{pin}"' if pin else "") + "}"
    cards = ",".join(lua_string(n) for n in numbers)
    return f"""
local cards = {{{cards}}}
local n = #cards
local i = 0
statuses = {{}}
local threads = {{}}
local body = {lua_string(body)}
local headers = {{["Authorization"] = {lua_string("Bearer " + key)}, ["Content-Type"] = "application/json"}}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  i = math.random(n)
end
request = function()
  i = i % n + 1
  return wrk.format("POST", string.format({lua_string(path_tmpl)}, cards[i]), headers, body)
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {{}}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, count in pairs(s) do total[code] = (total[code] or 0) + count end
  end
  for code, count in pairs(total) do io.write(string.format("STATUS %d %d\\n", code, count)) end
end
"""


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def timed(fn, repeat: int, warmup: int = 4) -> dict:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return {"p50": percentile(samples, 50), "p95": percentile(samples, 95), "mean": statistics.fmean(samples),
            "n": repeat}
