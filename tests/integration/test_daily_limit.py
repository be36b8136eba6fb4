"""The daily limit: 5 creations per user per UTC day, exact under concurrency and Redis faults."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests

from posterr.keys import daily_quota_key
from tests.integration.conftest import assert_problem, row_count
from tests.integration.workers import sessions_on_several_workers

LIMIT = 5


def wait_for(condition, seconds: float = 10) -> None:
    """Poll a condition until it holds (each poll is a real request, not a timed guess)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"


def quota_key(user_id: int) -> str:
    return daily_quota_key(user_id, datetime.now(UTC).date())


def simultaneous_creations(base: str, user_id: int, count: int) -> list[requests.Response]:
    """`count` creations released together from as many threads, each on a connection of its own
    that is already open (so the barrier lines up the requests, not the connects), and these
    connections spread over more than one gunicorn worker (checked), so the race is between processes."""
    sessions = sessions_on_several_workers(base, count)
    barrier = threading.Barrier(count)

    def create(n: int) -> requests.Response:
        with sessions[n] as session:
            barrier.wait(timeout=30)
            return session.post(f"{base}/api/posts", json={"user_id": user_id, "content": f"race {n}"}, timeout=30)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(create, range(count)))


def assert_exactly_five_of_twenty(responses, sql, user_id):
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * LIMIT + [429] * (20 - LIMIT)
    for refused in (r for r in responses if r.status_code == 429):
        assert_problem(refused, 429)
        assert 1 <= int(refused.headers["Retry-After"]) <= 86400
    assert sql.execute("SELECT count(*) FROM posts WHERE user_id = %s", (user_id,)).fetchone()[0] == LIMIT


def test_sixth_creation_is_429_with_retry_after_to_utc_midnight(api, sql):
    alice = api.new_user("alice")["id"]
    first = api.new_post(alice, "one")
    api.new_post(alice, None, repost_id=api.new_post(api.new_user("bob")["id"])["id"])
    api.new_post(alice, "a quote", repost_id=first["id"])
    api.new_post(alice, "four")
    api.new_post(alice, "five")
    before = datetime.now(UTC)
    refused = api.post("/api/posts", {"user_id": alice, "content": "six"})
    problem = assert_problem(refused, 429)
    midnight_in = 86400 - (before.hour * 3600 + before.minute * 60 + before.second)
    assert abs(int(refused.headers["Retry-After"]) - midnight_in) <= 2
    assert "limit" in problem["detail"]
    assert api.get(f"/api/users/{alice}").json()["posts_count"] == LIMIT
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "seven"}), 429)


def test_each_user_has_a_limit_of_their_own(api):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    for n in range(LIMIT):
        api.new_post(alice, f"a{n}")
    api.new_post(bob, "bob is not limited by alice")


def test_refused_creations_use_no_quota(api, sql):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    target = api.new_post(bob)
    api.new_post(alice, None, repost_id=target["id"])
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": " "}), 422)
    assert_problem(api.post("/api/posts", {"user_id": alice, "repost_id": 999}), 404)
    assert_problem(api.post(f"/api/posts/{target['id']}/repost", {"user_id": alice}), 409)
    for n in range(LIMIT - 1):
        api.new_post(alice, f"n{n}")
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "over"}), 429)


def test_conflict_is_reported_before_the_limit(api):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    target = api.new_post(bob)
    api.new_post(alice, None, repost_id=target["id"])
    for n in range(LIMIT - 1):
        api.new_post(alice, f"n{n}")
    assert_problem(api.post(f"/api/posts/{target['id']}/repost", {"user_id": alice}), 409)
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": ""}), 422)


def test_twenty_simultaneous_creations_give_exactly_five(api, sql, app_server):
    alice = api.new_user("alice")["id"]
    assert_exactly_five_of_twenty(simultaneous_creations(app_server, alice, 20), sql, alice)


def test_the_counter_is_visible_in_redis(api, redis_client):
    alice = api.new_user("alice")["id"]
    for n in range(3):
        api.new_post(alice, f"n{n}")
    assert int(redis_client.get(quota_key(alice))) == 3
    assert 0 < redis_client.ttl(quota_key(alice)) <= 86400 + 3600


def test_after_flushall_three_posts_today_leave_exactly_two(api, redis_client):
    alice = api.new_user("alice")["id"]
    for n in range(3):
        api.new_post(alice, f"n{n}")
    redis_client.flushall()
    api.new_post(alice, "four")
    api.new_post(alice, "five")
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "six"}), 429)
    assert int(redis_client.get(quota_key(alice))) == LIMIT


def test_postgres_holds_the_limit_when_redis_undercounts(api, redis_client, sql):
    alice = api.new_user("alice")["id"]
    for n in range(LIMIT):
        api.new_post(alice, f"n{n}")
    redis_client.set(quota_key(alice), 0)
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "six"}), 429)
    assert row_count(sql, "posts") == LIMIT


def test_yesterdays_posts_do_not_count_today(api, sql, redis_client):
    alice = api.new_user("alice")["id"]
    for n in range(LIMIT):
        api.new_post(alice, f"n{n}")
    # Move the day's work to yesterday: its Redis key is yesterday's too, so it is not today's.
    redis_client.rename(quota_key(alice), quota_key(alice) + ":yesterday")
    sql.execute("UPDATE post_quota SET day = day - 1")
    sql.execute("UPDATE posts SET created_at = created_at - interval '1 day'")
    api.new_post(alice, "a new day")


@pytest.mark.faults
def test_limit_is_exact_with_redis_stopped(api, sql, app_server, servers, redis_client):
    if not servers.owned:
        pytest.skip("needs the suite's own Redis (DATABASE_URL/REDIS_URL point elsewhere)")
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    api.new_post(bob, "before the outage")
    servers.stop_redis()
    try:
        assert api.get("/readyz").json().items() >= {"postgres": "ok", "redis": "down"}.items()  # and "replicas", when configured
        assert_exactly_five_of_twenty(simultaneous_creations(app_server, alice, 20), sql, alice)
        for n in range(LIMIT - 1):
            api.new_post(bob, f"during the outage {n}")
        assert_problem(api.post("/api/posts", {"user_id": bob, "content": "one too many"}), 429)
    finally:
        servers.start_redis()
    wait_for(lambda: api.get("/readyz").json()["redis"] == "ok")
    # Redis is back, empty: its counters are seeded from PostgreSQL and the limit still holds.
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "after"}), 429)
    carol = api.new_user("carol")["id"]
    api.new_post(carol, "after the outage")
