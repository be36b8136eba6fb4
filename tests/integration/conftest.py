from __future__ import annotations

import io
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import requests
from redis.cluster import RedisCluster

from loadtests.refusing_proxy import RefusingProxy
from posterr.cli import main
from posterr.keys import POSITIONS_HOLDER, WRITE_POSITIONS_KEY
from tests.conftest import REDIS_CLUSTER, TABLES, _free_port, log_records, running_app

APP_WORKERS = 2  # app_server's gunicorn workers (tests/conftest.py)
PASSWORD = "correct horse battery staple"


class Api:
    """A thin HTTP client for the app under test, plus shortcuts that must succeed."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=15, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json=None, **kwargs) -> requests.Response:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def new_user(self, username: str) -> dict:
        response = self.post("/api/users", {"username": username})
        assert response.status_code == 201, response.text
        return response.json()

    def new_post(self, user_id: int, content: str | None = "hello", repost_id: int | None = None) -> dict:
        body = {"user_id": user_id, "content": content, "repost_id": repost_id}
        response = self.post("/api/posts", {k: v for k, v in body.items() if v is not None})
        assert response.status_code == 201, response.text
        return response.json()

    def follow(self, user_id: int, target_id: int) -> None:
        response = self.put(f"/api/users/{user_id}/following/{target_id}")
        assert response.status_code == 204, response.text

    def new_account(self, username: str, password: str = PASSWORD, **token_options) -> Account:
        """A new user with a password, and a token from logging in (scopes read and write unless
        given)."""
        user = self.post("/api/users", {"username": username, "password": password})
        assert user.status_code == 201, user.text
        return Account(user.json()["id"], username, password, self.token(username, password, **token_options))

    def token(self, username: str, password: str = PASSWORD, **options) -> str:
        response = self.post("/api/tokens", {"username": username, "password": password, **options})
        assert response.status_code == 201, response.text
        return response.json()["token"]


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    password: str = field(repr=False)  # so that a failing assertion never prints it
    token: str = field(repr=False)

    @property
    def auth(self) -> dict[str, str]:
        """The headers of a request made with the account's token."""
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def redis_cluster(servers):
    """The suite's Redis Cluster (when the whole suite runs on one), else one grown for this module."""
    if not servers.owned:
        pytest.skip("needs the suite's own servers (DATABASE_URL/REDIS_URL point elsewhere)")
    url = servers.redis_url if REDIS_CLUSTER else servers.start_redis_cluster()
    client = RedisCluster.from_url(url)
    yield url, client
    client.close()
    if not REDIS_CLUSTER:
        servers.stop_redis_cluster()


@pytest.fixture
def api(app_server) -> Api:
    return Api(app_server)


@pytest.fixture(scope="module")
def required_app(servers, request):
    """An app of the module's own in required mode (what the contract calls the default), logging to
    gunicorn-<module>.log."""
    with running_app(servers, f"gunicorn-{request.module.__name__.rpartition('.')[2]}.log",
                     POSTERR_AUTH="required") as base:
        yield base


@contextmanager
def app_behind_refusing_proxy(servers, log_name: str, **settings: str):
    """An app reaching the suite's (standalone) Redis through a proxy that the test makes refuse: (Api, proxy)."""
    if REDIS_CLUSTER:
        pytest.skip("the suite's Redis is a cluster: the proxy stands before one server")
    url = urlsplit(servers.redis_url)
    proxy = RefusingProxy(_free_port(), (url.hostname, url.port))
    proxy.resume()
    try:
        with running_app(servers, log_name, REDIS_URL=url._replace(netloc=f"127.0.0.1:{proxy.port}").geturl(),
                         POSTERR_REDIS_RETRY_AFTER="0.05", **settings) as base:
            yield Api(base), proxy
    finally:
        proxy.stop()


@pytest.fixture
def run_cli(servers, monkeypatch):
    """`python -m posterr ARGS…` against the suite's servers, in this process: what it printed."""
    monkeypatch.setenv("DATABASE_URL", servers.database_url)
    monkeypatch.setenv("REDIS_URL", servers.redis_url)

    def run(*argv: str) -> str:
        out = io.StringIO()
        main(list(argv), out=out)
        return out.getvalue()

    return run


@pytest.fixture
def alice(api) -> int:
    """The id of a new user, alice."""
    return api.new_user("alice")["id"]


@pytest.fixture
def bob(api) -> int:
    return api.new_user("bob")["id"]


@pytest.fixture(autouse=True)
def clean_state(sql, redis_client):
    """Every integration test starts from empty tables and an empty Redis (emptied first: with a
    replica, the Sql helper keeps the TRUNCATE's position there; see tests/conftest.py)."""
    redis_client.flushdb()
    # A flush made on purpose, between tests that are clients of their own: nothing was lost that a
    # later read needs (a real loss makes the app read from the primary for a while; replicas.py).
    redis_client.hset(WRITE_POSITIONS_KEY, POSITIONS_HOLDER, positions_holder(redis_client))
    sql.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")


def positions_holder(redis_client) -> str:
    """What the positions' holder is while no position was lost: the epoch (run_id) of their master."""
    if REDIS_CLUSTER:
        info = redis_client.info("server", target_nodes=redis_client.get_node_from_key(WRITE_POSITIONS_KEY))
    else:
        info = redis_client.info("server")
    return info["run_id"][:12]


def row_count(sql, table: str) -> int:
    return sql.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def reads_processed(redis_client) -> int:
    """Read events Redis has processed: one per round trip that a client sends it (this call's own
    INFO included: one per master)."""
    if REDIS_CLUSTER:
        return sum(node["total_reads_processed"]
                   for node in redis_client.info("stats", target_nodes=RedisCluster.PRIMARIES).values())
    return redis_client.info("stats")["total_reads_processed"]


def statement_calls(sql, name: str) -> int:
    """How often the server has run the named query, by pg_stat_statements (every server the suite
    starts loads it)."""
    found = sql.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE %s",
                        (f"/* posterr:{name} */%",)).fetchone()
    return int(found[0])


def assert_problem(response: requests.Response, status: int) -> dict:
    """The API's error shape: problem+json with type, title, status, detail and error."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "error"} <= body.keys()
    assert body["status"] == status
    assert body["error"] == body["detail"] and body["detail"]
    assert "Traceback" not in response.text
    assert response.headers.get("X-Request-ID")
    return body


@contextmanager
def failing_trigger(sql, table: str, event: str, sqlstate: str):
    """Every `event` on `table` fails with `sqlstate` while the block runs."""
    sql.execute(f"CREATE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"RAISE EXCEPTION 'failed by the test' USING ERRCODE = '{sqlstate}'; END $$")
    sql.execute(f"CREATE TRIGGER test_fail BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION test_fail()")
    try:
        yield
    finally:
        sql.execute(f"DROP TRIGGER test_fail ON {table}")
        sql.execute("DROP FUNCTION test_fail()")


def fresh_get(base: str, path: str, request_id: str) -> requests.Response:
    """A GET on a connection of its own (a keep-alive session would only ever reach one worker),
    answered within 2 s or failed."""
    return requests.get(base + path, timeout=2, headers={"Connection": "close", "X-Request-ID": request_id})


def on_every_worker(base: str, label: str, check, log_name: str = "gunicorn.log") -> None:
    """check(get) over fresh connections until both gunicorn workers have answered (seen by the pid
    in the access log of each request, in the app's `log_name`), at least 4 and at most 200 rounds,
    two at a time (tests/integration/workers.py: one by one, the worker just awake wins every
    accept); so `check` must only read."""
    request_ids: set[str] = set()
    run = os.urandom(4).hex()  # the log file outlives this run: its ids must be this run's own
    numbers = itertools.count()

    def get(path: str) -> requests.Response:
        request_id = f"{label}-{run}-{next(numbers)}"
        request_ids.add(request_id)
        return fresh_get(base, path, request_id)

    with ThreadPoolExecutor(2) as pool:
        for rounds in range(2, 201, 2):
            for checked in [pool.submit(check, get) for _ in range(2)]:
                checked.result()
            if rounds >= 4 and len({r["pid"] for r in log_records(log_name, request_ids)}) == APP_WORKERS:
                return
    raise AssertionError(f"{label}: not every worker answered in 200 rounds of fresh connections")
