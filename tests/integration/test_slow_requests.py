"""POSTERR_SLOW_MS: a request slower than it logs one slow_request line with its route and the time
of each named query it ran; a faster one logs nothing beyond its access line."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.conftest import log_records, running_app
from tests.integration.conftest import Api

LOG = "gunicorn-slow.log"
SLOW_MS = 100
HELD_MS = 150  # the least time the test keeps the insert waiting: well over SLOW_MS


@pytest.fixture(scope="module")
def slow_app(servers):
    """The app with a 100 ms threshold, and a statement timeout and request watchdog far longer than
    any lock the test holds (so that how long it holds one changes no outcome)."""
    with running_app(servers, LOG, POSTERR_SLOW_MS=str(SLOW_MS), POSTERR_STATEMENT_TIMEOUT_MS="600000",
                     POSTERR_REQUEST_TIMEOUT="600") as base:
        yield base


def post_insert_waiting(sql, holder_pid: int, at_least_ms: int) -> bool:
    """Whether a statement inserting a post has waited at least `at_least_ms` on locks that backend
    `holder_pid` holds (it waits from the moment it starts: the lock is taken before)."""
    return sql.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY (pg_blocking_pids(pid)) "
        "AND query LIKE '%%INSERT INTO posts%%' AND clock_timestamp() - query_start >= %s * interval '1 ms'",
        (holder_pid, at_least_ms)).fetchone()[0] > 0


def test_a_request_over_the_threshold_logs_its_route_and_each_querys_time(slow_app, sql, servers):
    run = os.urandom(4).hex()  # the log file outlives this run: its request ids must be this run's own
    slow_id, fast_ids = f"slow-post-{run}", {f"fast-healthz-{run}", f"fast-user-{run}"}
    api = Api(slow_app)
    author = api.new_user("alice")["id"]
    with psycopg.connect(servers.database_url) as locker, ThreadPoolExecutor(1) as pool:
        # The author's row lock: insert_post (which bumps the author's posts_count) waits behind it.
        locker.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (author,))
        creation = pool.submit(api.post, "/api/posts", {"user_id": author, "content": "slow"},
                               headers={"X-Request-ID": slow_id})
        deadline = time.monotonic() + 30
        while not post_insert_waiting(sql, locker.info.backend_pid, HELD_MS):
            assert not creation.done(), f"answered without waiting on the lock: {creation.result().text}"
            assert time.monotonic() < deadline, f"the post's insert did not wait {HELD_MS} ms on the lock"
            time.sleep(0.01)  # polling interval
        locker.rollback()
        assert creation.result().status_code == 201, creation.result().text
    assert api.get("/healthz", headers={"X-Request-ID": f"fast-healthz-{run}"}).status_code == 200
    assert api.get(f"/api/users/{author}", headers={"X-Request-ID": f"fast-user-{run}"}).status_code == 200

    # Each worker writes its lines before it answers: they are in the file by now.
    records = log_records(LOG, {slow_id} | fast_ids)
    [access] = [r for r in records if r["request_id"] == slow_id and r["logger"] == "posterr.access"]
    [slow] = [r for r in records if r.get("event") == "slow_request" and r["request_id"] == slow_id]
    assert slow | {"time": "", "queries": [], "db_ms": 0} == {
        "time": "", "level": "WARNING", "logger": "posterr.http", "pid": access["pid"], "message": "slow_request",
        "event": "slow_request", "request_id": slow_id, "route": "/api/posts", "method": "POST", "status": 201,
        "duration_ms": access["duration_ms"], "queries": [], "db_ms": 0}, slow
    # One entry per execution, in order (the transaction's last query, with a replica, keeps the
    # client's write position).
    assert [query["name"] for query in slow["queries"]] == \
        ["author_of_new_post", "insert_post"] + (["write_position"] if servers.replica_url else [])
    [insert] = [query for query in slow["queries"] if query["name"] == "insert_post"]
    assert insert["ms"] >= HELD_MS
    times = [query["ms"] for query in slow["queries"]]
    assert slow["db_ms"] == pytest.approx(sum(times), abs=0.01 * len(times))  # each time is rounded to 0.01
    assert insert["ms"] <= slow["db_ms"] <= slow["duration_ms"]

    for request_id in fast_ids:
        [fast_access] = [r for r in records if r["request_id"] == request_id and r["logger"] == "posterr.access"]
        slow_lines = [r for r in records if r.get("event") == "slow_request" and r["request_id"] == request_id]
        # None for a request under the threshold (as these are, unless this machine stalled: then
        # the one line is right, and the access line says why).
        assert len(slow_lines) == (fast_access["duration_ms"] > SLOW_MS), (fast_access, slow_lines)
