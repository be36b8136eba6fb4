"""The slow_request line without servers: which requests are slow, what the line says of their
queries, and how a Session times its named queries only while a request asks it to."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from posterr.db import QUERY_TIMES, Query, Session
from posterr.edge.plugin import database_time, is_slow


@pytest.mark.parametrize("elapsed, slow_request_ms, slow", [
    (0.0995, 100, False),
    (0.1005, 100, True),
    (0.002, 1, True),
    (60.0, None, False),  # off
])
def test_a_request_is_slow_when_over_the_threshold(elapsed, slow_request_ms, slow):
    assert is_slow(elapsed, slow_request_ms) is slow


def test_database_time_lists_each_query_in_order_and_their_sum():
    times = [("insert_post", 0.1523), ("post_by_id", 0.0004), ("post_by_id", 0.00041)]
    assert database_time(times) == {
        "queries": [{"name": "insert_post", "ms": 152.3}, {"name": "post_by_id", "ms": 0.4},
                    {"name": "post_by_id", "ms": 0.41}],
        "db_ms": 153.11}


def test_database_time_of_a_request_without_queries():
    assert database_time([]) == {"queries": [], "db_ms": 0}


class Connection:
    """Answers every statement with one row, or fails those that contain "fail"."""

    def execute(self, sql, params, **options):
        if "fail" in sql:
            raise RuntimeError("the statement failed")
        return SimpleNamespace(fetchone=lambda: {"sql": sql}, rowcount=1)


QUERIES = {name: Query(name, "one", f"SELECT {name}", "test.sql", "none", per_call_plan=False, writes=False)
           for name in ("first", "second", "fail")}


@pytest.fixture
def timed():
    """The query times of a request that is being timed, as the HTTP edge sets them."""
    times: list[tuple[str, float]] = []
    token = QUERY_TIMES.set(times)
    yield times
    QUERY_TIMES.reset(token)


def test_a_timed_request_gets_each_query_in_order_failed_ones_too(timed):
    run = Session(Connection(), QUERIES)
    assert run("first") == {"sql": "SELECT first"}
    run("second")
    with pytest.raises(RuntimeError):
        run("fail")
    run("first")
    assert [name for name, _ in timed] == ["first", "second", "fail", "first"]
    assert all(seconds >= 0 for _, seconds in timed)


def test_a_session_outside_a_timed_request_only_runs_the_query():
    run = Session(Connection(), QUERIES)
    assert run("first") == {"sql": "SELECT first"}
    assert QUERY_TIMES.get() is None
