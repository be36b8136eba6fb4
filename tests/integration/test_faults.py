"""Redis stopped and PostgreSQL stopped or restarted in the middle of the suite: no 500s, no lost
writes, the daily limit exact, and recovery without restarting the app."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import assert_problem

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


def test_everything_works_while_redis_is_down_and_nothing_stale_is_served_after(api, servers):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    first = api.new_post(alice, "before the outage")
    assert api.get("/api/posts").json()[0]["id"] == first["id"]  # cached now
    api.get(f"/api/users/{alice}")
    servers.stop_redis()
    try:
        assert api.get("/readyz").json() == {"postgres": "ok", "redis": "down"}
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
    for _ in range(6):
        assert [p["id"] for p in api.get("/api/posts").json()] == [repost["id"], during["id"], first["id"]]
        assert api.get(f"/api/users/{alice}").json() == {**api.get(f"/api/users/{alice}").json(),
                                                         "followers_count": 1, "posts_count": 2}
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
