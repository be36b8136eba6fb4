"""`make test-ha`: the fail-over tests, against a Patroni cluster of three PostgreSQL members with
etcd (scripts/ha.sh) and a Redis, all on ports and in a folder of their own (<test data dir>/ha), so
they run beside `make ha`; POSTERR_TEST_HA_PG_PORTS, POSTERR_TEST_HA_API_PORTS, POSTERR_TEST_HA_ETCD_PORT
(etcd's peer port is the next one) and POSTERR_TEST_HA_REDIS_PORT move those ports, so that two
checkouts' runs go side by side. Not part of `make test` (tests/conftest.py leaves this folder out
unless POSTERR_TEST_HA=1, which `make test-ha` sets). The app runs as deployed, with
POSTERR_AUTH=required: the tests' users are accounts with a password, and act with their tokens."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import psycopg
import pytest
import redis

from tests.conftest import DATA, ROOT, TABLES, running_app
from tests.integration.conftest import Api

HA_DIR = DATA / "ha"
PG_PORTS = tuple(os.environ.get("POSTERR_TEST_HA_PG_PORTS", "25461 25462 25463").split())
HA_ENV = {"POSTERR_HA_DIR": str(HA_DIR), "POSTERR_HA_PG_PORTS": " ".join(PG_PORTS),
          "POSTERR_HA_API_PORTS": os.environ.get("POSTERR_TEST_HA_API_PORTS", "25471 25472 25473"),
          "POSTERR_HA_ETCD_PORT": os.environ.get("POSTERR_TEST_HA_ETCD_PORT", "25480")}
REDIS_ENV = {"POSTERR_DATA_DIR": str(HA_DIR / "redis-home"),
             "POSTERR_REDIS_PORT": os.environ.get("POSTERR_TEST_HA_REDIS_PORT", "25490")}


def ha_script(*args: str) -> str:
    """scripts/ha.sh on the tests' cluster: its stdout; its messages go to <ha dir>/script.log."""
    HA_DIR.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DATABASE_REPLICA_URLS")}
    with open(HA_DIR / "script.log", "a") as log:
        return subprocess.run([str(ROOT / "scripts" / "ha.sh"), *args], env={**env, **HA_ENV}, stdout=subprocess.PIPE,
                              stderr=log, check=True, text=True, timeout=300).stdout


def _exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            found[name] = value.strip("'")
    return found


@dataclass
class HaServers:
    """What running_app needs: the multi-host primary URL, each member as a replica, a Redis."""
    database_url: str
    replica_url: str
    redis_url: str

    def primary_port(self) -> str:
        return ha_script("primary").strip()

    def connect_primary(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def ha():
    exported = _exports(ha_script("up"))
    with open(HA_DIR / "script.log", "a") as log:
        redis_line = subprocess.run(
            [str(ROOT / "scripts" / "services.sh"), "up"],
            env={**os.environ, **REDIS_ENV, "DATABASE_URL": exported["DATABASE_URL"]},
            stdout=subprocess.PIPE, stderr=log, check=True, text=True).stdout
    servers = HaServers(exported["DATABASE_URL"], exported["DATABASE_REPLICA_URLS"], _exports(redis_line)["REDIS_URL"])
    try:
        yield servers
    finally:
        subprocess.run([str(ROOT / "scripts" / "services.sh"), "down"], env={**os.environ, **REDIS_ENV},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        ha_script("down")


@pytest.fixture
def clean(ha):
    """Every table emptied on the primary (and so on every member), Redis flushed."""
    with ha.connect_primary() as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    redis.Redis.from_url(ha.redis_url).flushall()
    return ha


@pytest.fixture
def app(clean):
    """The app against the cluster, in required mode: a short statement timeout (the commit deadline)
    and a large daily limit, so that the tests' many creations are about fail-over, not the limit; a
    thread and a connection for each of 40 creations held in flight, however they are spread over
    the workers."""
    with running_app(clean, "ha-app.log", POSTERR_AUTH="required", POSTERR_STATEMENT_TIMEOUT_MS="2000",
                     POSTERR_DAILY_POST_LIMIT="1000", POSTERR_POOL_TIMEOUT="2", POSTERR_THREADS="40") as base:
        yield Api(base)
