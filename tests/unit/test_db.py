"""posterr/db.py without a server: the query loader (db/queries/*.sql read into named queries), how
logs and the operator commands name a PostgreSQL server, which failures mean the server is gone, how
a Session times its named queries only while a request asks it to, and which commits are unconfirmed."""

from __future__ import annotations

import re
import threading
from types import SimpleNamespace

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from posterr import metrics
from posterr.db import (
    QUERIES_DIR,
    QUERY_TIMES,
    UNCONFIRMED_COMMITS,
    Database,
    Query,
    QueryFileError,
    Session,
    load_queries,
    server_name,
    server_unreachable,
)
from posterr.errors import UnconfirmedCommit
from posterr.validation import MAX_LIMIT

# --- the query loader -----------------------------------------------------------------------------


def write(tmp_path, name, text):
    (tmp_path / name).write_text(text)


def test_every_project_query_loads_with_its_index_note():
    queries = load_queries(QUERIES_DIR)
    assert {"insert_user", "user_by_id", "page_latest", "insert_post"} <= queries.keys()
    assert all(query.index for query in queries.values())


def test_blocks_are_split_by_name_with_kind_and_index(tmp_path):
    write(tmp_path, "a.sql", "-- name: one_thing :one\n-- Index: things_pkey.\nSELECT 1;\n\n"
                             "-- name: all_things :many\n-- Index: none\nSELECT 2\n")
    queries = load_queries(tmp_path)
    assert queries["one_thing"].kind == "one" and queries["one_thing"].sql == "/* posterr:one_thing */ SELECT 1"
    assert queries["all_things"].index == "none"


@pytest.mark.parametrize(("name", "writes"), [
    ("insert_post", True),
    ("claim_idempotency_key", True),
    ("insert_user", True),
    ("user_by_id", False),
    ("posts_page_latest", False),
    ("write_position", False),
])
def test_a_query_that_may_change_rows_is_known_as_a_write(name, writes):
    """Writes get a deadline on their commit (posterr/commit_deadline.py); reads never wait for one."""
    assert load_queries(QUERIES_DIR)[name].writes is writes


@pytest.mark.parametrize("text, message", [
    ("-- name: Bad-Name :one\n-- Index: x\nSELECT 1", "expected"),
    ("-- name: q :maybe\n-- Index: x\nSELECT 1", "expected"),
    ("SELECT 1;\n-- name: q :one\n-- Index: x\nSELECT 1", "before the first"),
    ("-- name: q :one\n-- Index: x\n", "no SQL"),
    ("-- name: q :one\nSELECT 1", "index"),
])
def test_malformed_files_stop_the_start(tmp_path, text, message):
    write(tmp_path, "bad.sql", text)
    with pytest.raises(QueryFileError, match=message):
        load_queries(tmp_path)


def test_duplicate_names_stop_the_start(tmp_path):
    write(tmp_path, "a.sql", "-- name: q :one\n-- Index: x\nSELECT 1")
    write(tmp_path, "b.sql", "-- name: q :one\n-- Index: x\nSELECT 2")
    with pytest.raises(QueryFileError, match="also defined"):
        load_queries(tmp_path)


def test_an_empty_folder_stops_the_start(tmp_path):
    with pytest.raises(QueryFileError):
        load_queries(tmp_path)


# The feed's page queries repeat one block of optional filters (each keeps its own text, for its
# plan): a filter added to some of them and not the others would be ignored on some feeds.
PAGE_FILTERS = {"author_id", "pattern", "since", "until", "include_replies", "after_created_at", "after_id", "limit",
                "floor_created_at", "floor_id"}
PAGE_QUERIES = {
    "page_latest": set(),
    "page_latest_scan": {"scan"},
    "page_recent_latest": set(),
    "page_recent_trending": {"after_score"},
    "page_trending": {"after_score"},
    "page_followed_latest": {"followed_by"},
    "page_followed_trending": {"followed_by", "after_score"},
}


@pytest.mark.parametrize("name, own", PAGE_QUERIES.items())
def test_every_page_query_takes_the_same_filters(name, own):
    assert set(re.findall(r"%\((\w+)\)s", load_queries(QUERIES_DIR)[name].sql)) == PAGE_FILTERS | own


def test_the_feed_page_queries_are_all_listed_above():
    queries = load_queries(QUERIES_DIR).values()
    assert {query.name for query in queries if query.path == "posts.sql" and query.name.startswith("page_")} \
        == PAGE_QUERIES.keys()


def test_every_statement_starts_with_its_name():
    """What pg_stat_statements and pg_stat_activity show begins with the query's name."""
    for name, query in load_queries(QUERIES_DIR).items():
        assert query.sql.startswith(f"/* posterr:{name} */ "), name


# The one-statement pages: their bounds always set (posterr/services/pagination.py), their inner
# LIMIT a constant that must cover the largest page a client may ask for, plus the row that tells
# whether a next page exists.
ONE_STATEMENT_PAGES = {
    "posts_page_latest": {"feed", "since", "before_created_at", "before_id"},
    "posts_page_trending": {"feed", "before_score", "before_created_at", "before_id"},
}


@pytest.mark.parametrize("name, own", ONE_STATEMENT_PAGES.items())
def test_every_one_statement_page_reads_at_most_the_largest_page_and_takes_its_bounds(name, own):
    query = load_queries(QUERIES_DIR)[name]
    assert set(re.findall(r"%\((\w+)\)s", query.sql)) == own | {"include_replies", "limit"}
    assert re.findall(r"LIMIT (\d+)", query.sql) == [str(MAX_LIMIT + 1)]
    assert not query.per_call_plan


# --- server names ---------------------------------------------------------------------------------
# How logs, metrics, /readyz and the operator commands name a PostgreSQL server: host:port, no
# user or password, every host of a multi-host (fail-over) URL.


@pytest.mark.parametrize(("url", "name"), [
    ("postgres://posterr@127.0.0.1:54329/posterr?sslmode=disable", "127.0.0.1:54329"),
    ("postgresql://user:secret@db.internal/posterr", "db.internal:5432"),
    ("postgresql:///posterr", "localhost:5432"),
    ("postgresql://[::1]:6432/posterr", "[::1]:6432"),
    ("postgresql://[::1]/posterr", "[::1]:5432"),
    ("postgresql://posterr@10.0.0.1:5432,10.0.0.2:5433,10.0.0.3/posterr?target_session_attrs=read-write",
     "10.0.0.1:5432,10.0.0.2:5433,10.0.0.3:5432"),
    ("postgresql://u:p@a:1,b/posterr", "a:1,b:5432"),
])
def test_a_server_is_named_by_its_hosts_and_ports_only(url, name):
    assert server_name(url) == name


# --- PostgreSQL gone, or one statement failed (see test_redis_failures.py for Redis) --------------


def _pg_error(error_class, sqlstate: str | None = None) -> Exception:
    error = error_class("failed")
    if sqlstate is not None:
        assert error_class.sqlstate == sqlstate
    return error


@pytest.mark.parametrize(("error", "unreachable"), [
    (PoolTimeout("couldn't get a connection after 5 s"), True),
    (psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"), True),
    (psycopg.InterfaceError("the connection is closed"), True),
    (_pg_error(psycopg.errors.AdminShutdown, "57P01"), True),
    (_pg_error(psycopg.errors.CrashShutdown, "57P02"), True),
    (_pg_error(psycopg.errors.CannotConnectNow, "57P03"), True),
    (_pg_error(psycopg.errors.TooManyConnections, "53300"), True),
    (_pg_error(psycopg.errors.ConnectionFailure, "08006"), True),
    (_pg_error(psycopg.errors.DeadlockDetected, "40P01"), False),
    (_pg_error(psycopg.errors.SerializationFailure, "40001"), False),
    (_pg_error(psycopg.errors.LockNotAvailable, "55P03"), False),
    (_pg_error(psycopg.errors.DiskFull, "53100"), False),
])
def test_only_connection_failures_count_as_postgresql_down(error, unreachable):
    assert server_unreachable(error) is unreachable


# --- a Session's query times (the slow_request line: tests/unit/edge/test_plugin.py) --------------


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


# --- unconfirmed commits (the server's side: tests/integration/test_unconfirmed_commits.py) --------


class WaitingConnection:
    """A write whose commit waits for a standby until a cancel comes, then succeeds as PostgreSQL's
    does, here with no warning at all (client_min_messages = error); or fails, as a statement that
    was still running does (`fails_when_cancelled`); or returns at once (`waits=False`)."""

    def __init__(self, *, waits: bool = True, fails_when_cancelled: bool = False):
        self.waits, self.fails_when_cancelled = waits, fails_when_cancelled
        self.cancel = threading.Event()
        self.closed = False

    def execute(self, sql, params, **options):
        if self.waits:
            assert self.cancel.wait(5), "no cancel came"
            if self.fails_when_cancelled:
                raise psycopg.errors.QueryCanceled("canceling statement due to user request")
        return SimpleNamespace(fetchone=lambda: {"id": 1}, rowcount=1)

    def cancel_safe(self, timeout: float) -> None:
        self.cancel.set()

    def close(self) -> None:
        self.closed = True


WRITES = {"write": Query("write", "one", "INSERT write", "test.sql", "none", per_call_plan=False, writes=True)}


@pytest.fixture
def database():
    """A Database whose commits have a 50 ms deadline (its pool is never opened: no server)."""
    return Database("postgresql://posterr@127.0.0.1:1/posterr", WRITES, min_size=0, max_size=1, timeout=1,
                    statement_timeout_ms=50)


@pytest.fixture
def in_request():
    """The request's unconfirmed commits, as the HTTP edge sets them."""
    pending: list[str] = []
    token = UNCONFIRMED_COMMITS.set(pending)
    yield pending
    UNCONFIRMED_COMMITS.reset(token)


def unconfirmed_total() -> float:
    return metrics.UNCONFIRMED_COMMITS._value.get()


def test_a_commit_that_succeeds_after_its_cancel_is_unconfirmed_with_no_warning(database, in_request):
    """Known from the cancel the process sent, not from a warning the server may never send."""
    before = unconfirmed_total()
    waiting = WaitingConnection()
    assert Session(waiting, WRITES, database._commit_watched)("write") == {"id": 1}
    assert in_request == [database.name]
    assert unconfirmed_total() == before + 1
    assert waiting.closed


def test_outside_a_request_an_unconfirmed_commit_raises(database):
    with pytest.raises(UnconfirmedCommit):
        Session(WaitingConnection(), WRITES, database._commit_watched)("write")


def test_a_commit_done_before_its_deadline_is_confirmed(database, in_request):
    before = unconfirmed_total()
    quick = WaitingConnection(waits=False)
    Session(quick, WRITES, database._commit_watched)("write")
    assert in_request == [] and unconfirmed_total() == before
    assert not quick.cancel.is_set() and not quick.closed


def test_a_write_that_failed_after_its_cancel_raises_and_is_not_counted(database, in_request):
    """The cancel stopped the statement itself: nothing was written, the error says so."""
    before = unconfirmed_total()
    with pytest.raises(psycopg.errors.QueryCanceled):
        Session(WaitingConnection(fails_when_cancelled=True), WRITES, database._commit_watched)("write")
    assert in_request == [] and unconfirmed_total() == before
