"""Test set-up: real PostgreSQL and Redis, a freshly migrated test database, the app under gunicorn.

Without DATABASE_URL / REDIS_URL the suite starts its own servers under .data/test (ports 54339 and
63809, and 24340 for the replica the replica tests grow; POSTERR_TEST_DATA_DIR, POSTERR_TEST_PG_PORT,
POSTERR_TEST_REDIS_PORT and POSTERR_TEST_REPLICA_PG_PORT move them) and stops them at the end; their
output goes to log files there, never to the terminal.
"""

from __future__ import annotations

import json
import os
import re
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
from redis.cluster import RedisCluster
from redis.retry import Retry

from posterr.keys import WRITE_POSITIONS_EXPIRY_KEY, WRITE_POSITIONS_KEY
from posterr.wal_positions import lsn
from tests.integration.workers import serving_process

ROOT = Path(__file__).resolve().parent.parent
# Overridable so that two suites can run side by side on one machine.
DATA = Path(os.environ.get("POSTERR_TEST_DATA_DIR", ROOT / ".data" / "test"))
SERVICES_ENV = {"POSTERR_DATA_DIR": str(DATA),
                "POSTERR_PG_PORT": os.environ.get("POSTERR_TEST_PG_PORT", "54339"),
                "POSTERR_REDIS_PORT": os.environ.get("POSTERR_TEST_REDIS_PORT", "63809"),
                # Below the kernel's ephemeral range (32768-60999): the replica is (re)started while
                # the suite's apps and clients hold ports from that range, which may include any other.
                "POSTERR_REPLICA_PG_PORT": os.environ.get("POSTERR_TEST_REPLICA_PG_PORT", "24340"),
                # Idem for the Redis Cluster's masters (their cluster bus listens 100 ports higher).
                "POSTERR_REDIS_CLUSTER_PORTS": os.environ.get("POSTERR_TEST_REDIS_CLUSTER_PORTS", "24351 24352 24353"),
                "POSTERR_PG_EXTRA_CONF": "fsync = off\nsynchronous_commit = off\nfull_page_writes = off"}
TABLES = "users, posts, follows, post_quota, idempotency_keys, api_tokens"
# `make test-cluster` runs the integration suite again with every app reading from a streaming
# replica that applies the primary's commits this late (recovery_min_apply_delay), e.g. "2s".
REPLICA_DELAY = os.environ.get("POSTERR_TEST_REPLICA_DELAY", "")
# Then the apps allow the replica this much lag: more than its delay, so that it serves reads (2 s
# behind) instead of being set aside after every commit.
REPLICA_MAX_LAG_MS = 5000
# `make test-cluster` also runs the integration suite against a 3-master Redis Cluster of its own.
REDIS_CLUSTER = os.environ.get("POSTERR_TEST_REDIS_CLUSTER") == "1"
# tests/ha (a Patroni cluster, minutes of fail-overs) runs in `make test-ha`, which sets this.
collect_ignore = [] if os.environ.get("POSTERR_TEST_HA") == "1" else ["ha"]
# Filled by the tests, printed at the end of the run (what the cluster and replica tests sent and saw).
RESULTS: list[str] = []


TEST_SECRET_KEY = "posterr-test-secret-0123456789abcdef"  # what running_app signs cursors with


@dataclass
class Servers:
    database_url: str
    redis_url: str
    owned: bool  # started by this suite, so it may stop and restart them

    replica_url: str | None = None  # set by start_replica

    def _services(self, command: str, *args: str, **extra_env: str) -> str:
        DATA.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        with open(DATA / "services.log", "a") as log:
            return subprocess.run([str(ROOT / "scripts" / "services.sh"), command, *args],
                                  env={**env, **SERVICES_ENV, **extra_env}, stdout=subprocess.PIPE, stderr=log,
                                  check=True, text=True).stdout

    def start_replica(self, apply_delay: str) -> str:
        """A streaming replica of the suite's PostgreSQL (its URL, for the suite's database)."""
        exported = self._services("replica-up", POSTERR_REPLICA_APPLY_DELAY=apply_delay)
        url = exported.split("=", 1)[1].strip().strip("'")
        self.replica_url = _test_database_url(url)
        return self.replica_url

    def start_redis_cluster(self) -> str:
        """A 3-master Redis Cluster (its first node's URL); starts again a node killed meanwhile."""
        return self._services("redis-cluster-up").split("=", 1)[1].strip().strip("'")

    def stop_redis_cluster(self) -> None:
        self._services("redis-cluster-down")

    def kill_redis_node(self, port: int) -> None:
        self._services("redis-cluster-kill", str(port))

    def stop_replica(self) -> None:
        self._services("replica-down")

    def pause_replica(self) -> None:
        self._services("replica-pause")

    def resume_replica(self) -> None:
        self._services("replica-resume")

    # On a Redis Cluster (POSTERR_TEST_REDIS_CLUSTER) the Redis faults strike every master.

    def freeze_redis(self) -> None:
        """SIGSTOP: Redis keeps its connections but answers nothing (a stalled host, a long fork)."""
        for pid in self._redis_pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw_redis(self) -> None:
        for pid in self._redis_pids():
            os.kill(pid, signal.SIGCONT)

    def _redis_pids(self) -> list[int]:
        files = DATA.glob("redis-cluster/*/redis.pid") if REDIS_CLUSTER else [DATA / "redis" / "redis.pid"]
        return [int(path.read_text()) for path in files]

    def stop_redis(self) -> None:
        self._services("redis-cluster-down" if REDIS_CLUSTER else "stop-redis")

    def start_redis(self) -> None:
        self._services("redis-cluster-up" if REDIS_CLUSTER else "start-redis")

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
        if REDIS_CLUSTER:
            found.redis_url = found.start_redis_cluster()
    dbmate = [str(ROOT / ".venv" / "bin" / "dbmate"), "--url", found.database_url,
              "--migrations-dir", str(ROOT / "db" / "migrations"), "--no-dump-schema"]
    with open(DATA / "migrate.log", "w") if DATA.exists() else open(os.devnull, "w") as log:
        subprocess.run([*dbmate, "drop"], stdout=log, stderr=log, check=False)  # absent is fine
        subprocess.run([*dbmate, "--wait", "up"], stdout=log, stderr=log, check=True)
    if REPLICA_DELAY:
        assert found.owned, "POSTERR_TEST_REPLICA_DELAY needs the suite's own servers (unset DATABASE_URL)"
        found.start_replica(REPLICA_DELAY)
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
           "POSTERR_DAILY_POST_LIMIT": "5", "POSTERR_SECRET_KEY": TEST_SECRET_KEY, "POSTERR_POOL_TIMEOUT": "3",
           "POSTERR_REDIS_RETRY_AFTER": "0.5", "POSTERR_RATE_LIMIT": "off",
           # The integration suite speaks v1.1 (a body or path names the acting user), which legacy
           # mode keeps for the previous frontend; the tests of accounts and tokens, the cluster and
           # fail-over tests and the soak run in required mode (POSTERR_AUTH="required").
           "POSTERR_AUTH": "legacy",
           **({"DATABASE_REPLICA_URLS": servers.replica_url,
               "POSTERR_REPLICA_MAX_LAG": str(REPLICA_MAX_LAG_MS / 1000)} if servers.replica_url else {}),
           **settings}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    DATA.mkdir(parents=True, exist_ok=True)
    with open(DATA / log_name, "a") as log:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "posterr" / "gunicorn_conf.py")],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_serving(base, process, int(env["WEB_CONCURRENCY"]))
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
        if servers.replica_url:
            reads = re.findall(r'^posterr_db_reads_total\{target="(\w+)"\} (\S+)$',
                               requests.get(base + "/metrics", timeout=5).text, re.MULTILINE)
            RESULTS.append(f"the suite against a replica applying commits {REPLICA_DELAY} late: reads that a "
                           f"replica may serve went to {', '.join(f'{t} {float(n):.0f}' for t, n in reads)}")


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


def _wait_until_serving(base: str, process: subprocess.Popen, workers: int) -> None:
    """Until every worker answers /healthz: a test that spreads connections over the workers must not
    start while one is still booting (all of them would go to the other)."""
    deadline, answered = time.monotonic() + 30, set()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {DATA / 'gunicorn.log'}")
        try:
            with requests.get(f"{base}/healthz", timeout=1, stream=True) as response:
                if response.status_code == 200:
                    answered.add(serving_process(response))
        except requests.RequestException:
            pass
        if len(answered) == workers:
            return
        time.sleep(0.02)  # polling the socket until it answers, not synchronising test steps
    raise RuntimeError(f"{workers - len(answered)} of {workers} gunicorn workers did not answer /healthz "
                       f"within 30 s; see {DATA / 'gunicorn.log'}")


class Sql:
    """A direct connection to the test database, to check what the API wrote. It reconnects once
    when a fault test has restarted PostgreSQL under it.

    With a replica (POSTERR_TEST_REPLICA_DELAY), what a test writes here is the test client's write
    like any other: its WAL position is kept in Redis as the app keeps a client's (posterr/replicas.py),
    so the app does not answer the test's next read from a replica that lacks it."""

    def __init__(self, url: str, redis_url: str | None = None):
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)
        self.positions = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 3),
                                              retry_on_error=[redis.ConnectionError]) if redis_url else None

    def execute(self, query, params=None):
        try:
            cursor = self.conn.execute(query, params)
        except psycopg.OperationalError:
            self.conn.close()
            self.conn = psycopg.connect(self.url, autocommit=True)
            cursor = self.conn.execute(query, params)
        if self.positions is not None and not str(query).lstrip().upper().startswith(("SELECT", "EXPLAIN", "SET")):
            self._keep_position()
        return cursor

    def _keep_position(self) -> None:
        (position,) = self.conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        value = f"{lsn(position):016X}"
        try:
            pipeline = self.positions.pipeline(transaction=False)  # as Replicas.remember_write keeps it
            pipeline.hset(WRITE_POSITIONS_KEY, "127.0.0.1", value)
            pipeline.zadd(WRITE_POSITIONS_EXPIRY_KEY, {"127.0.0.1": time.time() * 1000 + REPLICA_MAX_LAG_MS + 1000})
            pipeline.execute()
        except redis.ConnectionError:
            pass  # a fault test stopped Redis: the app then reads from the primary anyway

    def close(self):
        self.conn.close()


@pytest.fixture(scope="session")
def sql(servers):
    connection = Sql(servers.database_url, servers.redis_url if REPLICA_DELAY else None)
    yield connection
    connection.close()


class EveryMaster(RedisCluster):
    """The suite's client of a Redis Cluster: what a test tells "the" Redis server (CONFIG SET, CLIENT
    PAUSE) every master is told, and what it asks of it (KEYS) every master answers, as FLUSHDB and
    SCAN already go to every master. redis-py sends KEYS to one node only (its default node), which
    holds a third of the slots: a timeline test found no key there (issue 33)."""

    def execute_command(self, *args, **kwargs):
        if str(args[0]).upper() in ("CONFIG SET", "CLIENT", "KEYS") and "target_nodes" not in kwargs:
            kwargs["target_nodes"] = self.PRIMARIES
        return super().execute_command(*args, **kwargs)


@pytest.fixture(scope="session")
def redis_client(servers):
    # Fault tests restart this Redis: a stale pooled connection is retried on a fresh one.
    if REDIS_CLUSTER:
        client = EveryMaster.from_url(servers.redis_url)
    else:
        client = redis.Redis.from_url(servers.redis_url, retry=Retry(NoBackoff(), 3),
                                      retry_on_error=[redis.ConnectionError])
    yield client
    client.close()


def pytest_terminal_summary(terminalreporter):
    if RESULTS:
        terminalreporter.section("measured by the tests")
        for line in RESULTS:
            terminalreporter.write_line(line)
