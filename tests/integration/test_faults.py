"""Redis stopped and PostgreSQL stopped or restarted in the middle of the suite: no 500s, no lost
writes, the daily limit exact, and recovery without restarting the app."""

from __future__ import annotations

import subprocess
import threading
import time
from contextlib import contextmanager

import pytest
import redis

from tests.conftest import _free_port, running_app
from tests.integration.conftest import Api, assert_problem, failing_trigger, on_every_worker

pytestmark = pytest.mark.faults


@pytest.fixture(autouse=True)
def owned(servers):
    if not servers.owned:
        pytest.skip("needs the suite's own servers (DATABASE_URL/REDIS_URL point elsewhere)")


def eventually(check, seconds: float = 20):
    """Poll `check` (a real request each time) until it returns a truthy value."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result


def test_everything_works_while_redis_is_down_and_nothing_stale_is_served_after(api, servers, app_server):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    first = api.new_post(alice, "before the outage")
    assert api.get("/api/posts").json()[0]["id"] == first["id"]  # cached now
    api.get(f"/api/users/{alice}")
    servers.stop_redis()
    try:
        assert api.get("/readyz").json().items() >= {"postgres": "ok", "redis": "down"}.items()  # and "replicas", when configured
        during = api.new_post(alice, "during the outage")
        repost = api.new_post(bob, None, repost_id=first["id"])
        api.follow(bob, alice)
        assert [p["id"] for p in api.get("/api/posts").json()] == [repost["id"], during["id"], first["id"]]
        assert api.get(f"/api/users/{alice}").json()["followers_count"] == 1
        assert api.get(f"/api/posts/{first['id']}").json()["repost_count"] == 1
    finally:
        servers.start_redis()
    # Redis came back with its append-only file (the page cached before the outage is in it):
    # it must not be served, from either worker, and Redis is used again without a restart.
    def current(get):
        assert [p["id"] for p in get("/api/posts").json()] == [repost["id"], during["id"], first["id"]]
        profile = get(f"/api/users/{alice}").json()
        assert (profile["followers_count"], profile["posts_count"]) == (1, 2)
    on_every_worker(app_server, "after-aof-reload", current)
    assert eventually(lambda: api.get("/readyz").json()["redis"] == "ok")


def test_postgres_restart_gives_503_not_500_and_loses_no_acknowledged_write(api, servers, sql):
    alice = api.new_user("alice")["id"]
    for n in range(3):
        api.new_post(alice, f"before restart {n}")
    servers.restart_postgres()
    acknowledged, statuses = [], []
    for n in range(4):
        response = api.post("/api/posts", {"user_id": alice, "content": f"after restart {n}"})
        statuses.append(response.status_code)
        if response.status_code == 201:
            acknowledged.append(response.json()["id"])
        elif response.status_code == 503:
            assert_problem(response, 503)
            assert int(response.headers["Retry-After"]) > 0
    assert set(statuses) <= {201, 429, 503}
    assert statuses.count(201) <= 2
    assert eventually(lambda: api.get("/readyz").status_code == 200)
    while len(acknowledged) < 2:  # the rest of the day's quota, now that PostgreSQL is back
        response = api.post("/api/posts", {"user_id": alice, "content": "after recovery"})
        assert response.status_code in (201, 503), response.text
        if response.status_code == 201:
            acknowledged.append(response.json()["id"])
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "sixth"}), 429)
    stored = {row[0] for row in sql.execute("SELECT id FROM posts WHERE user_id = %s", (alice,)).fetchall()}
    assert set(acknowledged) <= stored and len(stored) == 5


def test_postgres_down_cached_reads_still_answer_and_the_rest_is_503(api, servers):
    alice = api.new_user("alice")["id"]
    post = api.new_post(alice, "cached")
    for _ in range(2):
        api.get("/api/posts")
        api.get(f"/api/posts/{post['id']}")
    servers.stop_postgres()
    try:
        assert api.get("/api/posts").json()[0]["id"] == post["id"]
        assert api.get(f"/api/posts/{post['id']}").status_code == 200
        for response in (api.get("/readyz"), api.get("/api/posts?keyword=x"),
                         api.post("/api/posts", {"user_id": alice, "content": "no"}),
                         api.post("/api/users", {"username": "nobody"})):
            assert_problem(response, 503)
            assert int(response.headers["Retry-After"]) > 0
        assert api.get("/healthz").status_code == 200
    finally:
        servers.start_postgres()
    assert eventually(lambda: api.get("/readyz").status_code == 200)
    assert api.post("/api/users", {"username": "somebody"}).status_code == 201


# --- no hang, and read-your-writes on every worker, whatever Redis does ------------------------

def test_reads_right_after_a_redis_restart_answer_at_once_on_every_worker(api, servers, app_server):
    """The sequence that once hung every request: cached page, Redis stopped, writes, Redis started,
    then reads first (not writes)."""
    authors = [api.new_user(f"author{n}")["id"] for n in range(6)]
    for _ in range(4):
        assert api.get("/api/posts").status_code == 200  # the first page is cached now
    servers.stop_redis()
    try:
        written = [api.new_post(author, f"during the outage {n}")["id"] for n, author in enumerate(authors)]
    finally:
        servers.start_redis()

    def check(get):
        feed = get("/api/posts")
        assert feed.status_code == 200 and [p["id"] for p in feed.json()[:6]] == written[::-1]
        assert get("/healthz").status_code == 200
        assert get("/readyz").status_code == 200
    on_every_worker(app_server, "after-redis-restart", check)


def _warm_and_write_during(api, app_server, label: str, fault) -> None:
    """Cache alice's profile and the feeds on both workers, write while `fault` is in force (it must
    end by itself), then every worker serves the write at once."""
    alice = api.new_user("alice")["id"]
    api.new_post(alice, "before")

    def warm(get):
        assert get("/api/posts").status_code == 200 and get(f"/api/users/{alice}").status_code == 200
    on_every_worker(app_server, f"{label}-warm", warm)
    with fault():
        post = api.new_post(alice, "during the fault")

    def check(get):
        assert get("/api/posts").json()[0]["id"] == post["id"]
        assert get(f"/api/posts?author_id={alice}").json()[0]["id"] == post["id"]
        assert get(f"/api/users/{alice}").json()["posts_count"] == 2
    on_every_worker(app_server, f"{label}-read", check)


def test_a_write_during_a_redis_pause_is_answered_after_its_copies_are_deleted(api, app_server, redis_client):
    @contextmanager
    def pause():
        redis_client.execute_command("CLIENT", "PAUSE", "1500", "WRITE")  # ends by itself
        yield

    _warm_and_write_during(api, app_server, "pause", pause)


def test_a_write_during_a_redis_freeze_is_answered_after_its_copies_are_deleted(api, app_server, servers):
    @contextmanager
    def freeze():
        servers.freeze_redis()
        thaw = threading.Timer(1.0, servers.thaw_redis)  # a one-second freeze
        thaw.start()
        try:
            yield
        finally:
            thaw.join()
            servers.thaw_redis()

    _warm_and_write_during(api, app_server, "freeze", freeze)


def test_redis_error_replies_degrade_like_an_outage(api, redis_client):
    """OOM here; MOVED, READONLY or a script error take the same path: never a 500."""
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    first = api.new_post(alice, "before")
    api.get("/api/posts")
    policy = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    redis_client.config_set("maxmemory-policy", "noeviction")
    redis_client.config_set("maxmemory", 1)  # every write command now answers an OOM error
    try:
        post = api.new_post(alice, "while Redis refuses writes")
        api.new_post(bob, None, repost_id=first["id"])
        api.follow(bob, alice)
        carol = api.new_user("carol")
        assert api.get("/api/posts").json()[0]["repost_id"] == first["id"]
        assert api.get(f"/api/posts/{post['id']}").status_code == 200
        assert api.get(f"/api/users/{alice}").json()["followers_count"] == 1
        assert api.get(f"/api/users/{carol['id']}").json() == carol
    finally:
        redis_client.config_set("maxmemory", 0)
        redis_client.config_set("maxmemory-policy", policy)


def test_a_deadlock_fails_only_its_own_request(api, sql):
    """A statement error on a working server is not "PostgreSQL is down": the next request, on the
    same worker (this keep-alive session), is served at once."""
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    with failing_trigger(sql, "follows", "INSERT", "40P01"):
        refused = api.put(f"/api/users/{alice}/following/{bob}")
        assert_problem(refused, 503)
        assert refused.headers["Retry-After"] == "1"
        assert api.get(f"/api/users/{alice}").json()["following_count"] == 0
        assert api.post("/api/users", {"username": "carol"}).status_code == 201


def test_a_redis_cluster_node_without_slots_degrades_like_an_outage(servers, tmp_path):
    """Every keyed command there answers an error (CLUSTERDOWN; MOVED takes the same path)."""
    port, bus_port = _free_port(), _free_port()
    with open(tmp_path / "redis.log", "w") as log:
        node = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp_path),
                                 "--cluster-enabled", "yes", "--cluster-port", str(bus_port), "--save", "",
                                 "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT)
    try:
        probe = redis.Redis(port=port, socket_timeout=1)
        assert eventually(lambda: _answers(probe), seconds=10), (tmp_path / "redis.log").read_text()
        with pytest.raises(redis.ResponseError, match="slot not served"):
            probe.get("posterr:anything")
        with running_app(servers, "gunicorn-cluster-node.log", REDIS_URL=f"redis://127.0.0.1:{port}/0",
                         POSTERR_RATE_LIMIT="1000/second") as base:
            api = Api(base)
            alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
            post = api.new_post(alice, "no slot serves this")
            api.new_post(bob, None, repost_id=post["id"])
            api.follow(bob, alice)
            for path in ("/api/posts", f"/api/posts?author_id={alice}", f"/api/posts/{post['id']}",
                         f"/api/users/{alice}", "/readyz"):
                assert api.get(path).status_code == 200, path
            assert api.get(f"/api/posts/{post['id']}").json()["repost_count"] == 1
    finally:
        node.terminate()
        node.wait(timeout=10)


def _answers(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False
