"""Test set-up: real PostgreSQL and Redis, a freshly migrated test database, the app under gunicorn.

Without DATABASE_URL / REDIS_URL the suite starts its own servers under .data/test (ports 54339 and
63809; POSTERR_TEST_DATA_DIR, POSTERR_TEST_PG_PORT and POSTERR_TEST_REDIS_PORT move them) and stops
them at the end; their output goes to log files there, never to the terminal.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry

ROOT = Path(__file__).resolve().parent.parent
# Overridable so that two suites can run side by side on one machine.
DATA = Path(os.environ.get("POSTERR_TEST_DATA_DIR", ROOT / ".data" / "test"))
SERVICES_ENV = {"POSTERR_DATA_DIR": str(DATA),
                "POSTERR_PG_PORT": os.environ.get("POSTERR_TEST_PG_PORT", "54339"),
                "POSTERR_REDIS_PORT": os.environ.get("POSTERR_TEST_REDIS_PORT", "63809"),
                "POSTERR_PG_EXTRA_CONF": "fsync = off\nsynchronous_commit = off\nfull_page_writes = off"}
TABLES = "users, posts, follows, post_quota, idempotency_keys"


@dataclass
class Servers:
    database_url: str
    redis_url: str
    owned: bool  # started by this suite, so it may stop and restart them

    def _services(self, command: str) -> None:
        DATA.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        with open(DATA / "services.log", "a") as log:
            subprocess.run([str(ROOT / "scripts" / "services.sh"), command], env={**env, **SERVICES_ENV},
                           stdout=log, stderr=log, check=True)

    def freeze_redis(self) -> None:
        """SIGSTOP: Redis keeps its connections but answers nothing (a stalled host, a long fork)."""
        os.kill(self._redis_pid(), signal.SIGSTOP)

    def thaw_redis(self) -> None:
        os.kill(self._redis_pid(), signal.SIGCONT)

    def _redis_pid(self) -> int:
        return int((DATA / "redis" / "redis.pid").read_text())

    def stop_redis(self) -> None:
        self._services("stop-redis")

    def start_redis(self) -> None:
        self._services("start-redis")

    def restart_postgres(self) -> None:
        self._services("restart-postgres")

    def stop_postgres(self) -> None:
        self._services("stop-postgres")

    def start_postgres(self) -> None:
        self._services("start-postgres")


def _test_database_url(url: str) -> str:
    """The same server, a database of the suite's own (dbmate drops and re-creates it)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "posterr"
    return urlunsplit(parts._replace(path=f"/{name}_test"))


@pytest.fixture(scope="session")
def servers():
    configured = os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")
    if configured:
        found = Servers(_test_database_url(os.environ["DATABASE_URL"]), os.environ["REDIS_URL"], owned=False)
    else:
        pg, rd = SERVICES_ENV["POSTERR_PG_PORT"], SERVICES_ENV["POSTERR_REDIS_PORT"]
        found = Servers(f"postgres://posterr@127.0.0.1:{pg}/posterr_test?sslmode=disable",
                        f"redis://127.0.0.1:{rd}/0", owned=True)
        found._services("up")
    dbmate = [str(ROOT / ".venv" / "bin" / "dbmate"), "--url", found.database_url,
              "--migrations-dir", str(ROOT / "db" / "migrations"), "--no-dump-schema"]
    with open(DATA / "migrate.log", "w") if DATA.exists() else open(os.devnull, "w") as log:
        subprocess.run([*dbmate, "drop"], stdout=log, stderr=log, check=False)  # absent is fine
        subprocess.run([*dbmate, "--wait", "up"], stdout=log, stderr=log, check=True)
    try:
        yield found
    finally:
        if found.owned:
            found._services("down")


@contextmanager
def running_app(servers, log_name: str, **settings: str):
    """The app under gunicorn on a free port, with the suite's settings (plus `settings`)."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url,
           "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2", "POSTERR_THREADS": "8",
           "POSTERR_DAILY_POST_LIMIT": "5", "POSTERR_SECRET_KEY": "test-secret", "POSTERR_POOL_TIMEOUT": "3",
           "POSTERR_REDIS_RETRY_AFTER": "0.5", "POSTERR_RATE_LIMIT": "off", **settings}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    DATA.mkdir(parents=True, exist_ok=True)
    with open(DATA / log_name, "a") as log:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "posterr" / "gunicorn_conf.py")],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_serving(base, process)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="session")
def app_server(servers):
    """The app under gunicorn (2 workers, so the limits are shown across processes); no per-client
    rate limit here (every test request comes from 127.0.0.1): test_rate_limit.py runs its own."""
    with running_app(servers, "gunicorn.log") as base:
        yield base


def log_records(log_name: str, request_ids: set[str]) -> list[dict]:
    """The JSON log lines of an app started by running_app that carry one of these request ids."""
    records = []
    for line in (DATA / log_name).read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("request_id") in request_ids:
                records.append(record)
    return records


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {DATA / 'gunicorn.log'}")
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.05)  # polling the socket until it answers, not synchronising test steps
    raise RuntimeError(f"gunicorn did not answer /healthz within 30 s; see {DATA / 'gunicorn.log'}")


class Sql:
    """A direct connection to the test database, to check what the API wrote. It reconnects once
    when a fault test has restarted PostgreSQL under it."""

    def __init__(self, url: str):
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)

    def execute(self, query, params=None):
        try:
            return self.conn.execute(query, params)
        except psycopg.OperationalError:
            self.conn.close()
            self.conn = psycopg.connect(self.url, autocommit=True)
            return self.conn.execute(query, params)

    def close(self):
        self.conn.close()


@pytest.fixture(scope="session")
def sql(servers):
    connection = Sql(servers.database_url)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def redis_client(servers):
    # Fault tests restart this Redis: a stale pooled connection is retried on a fresh one.
    client = redis.Redis.from_url(servers.redis_url, retry=Retry(NoBackoff(), 3),
                                  retry_on_error=[redis.ConnectionError])
    yield client
    client.close()
