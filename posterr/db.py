"""PostgreSQL access: the named-query loader and the connection pool.

Queries live in `db/queries/*.sql`, one per `-- name: NAME :one|:many|:exec` block, in the style of
sqlc and aiosql. They are loaded once at start-up; a duplicate or malformed block stops the start.
"""

from __future__ import annotations

import logging
import re
import select
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from posterr import deferred_check, logs, metrics
from posterr.commit_deadline import CommitDeadlines, WatchedCommit
from posterr.errors import DatabaseUnavailable, DuplicateRow, ServiceUnavailable, UnconfirmedCommit

log = logging.getLogger("posterr.db")
FAST_FAIL_SECONDS = 1
UNDO_WAIT = 0.2  # seconds Database.undo waits for a pooled connection
QUERIES_DIR = Path(__file__).resolve().parent.parent / "db" / "queries"
_HEADER = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s+:(?P<kind>one|many|exec)\s*$")
_INDEX_NOTE = re.compile(r"^--\s*index:\s*(?P<index>.+?)\s*$", re.IGNORECASE)
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)  # FOR UPDATE locks: a write too


# The request's unconfirmed commits, by server name (set by the HTTP edge, which then answers 503 once
# the route has done its work); None outside a request, where such a commit raises at once.
UNCONFIRMED_COMMITS: ContextVar[list[str] | None] = ContextVar("posterr_unconfirmed_commits", default=None)

NAME_TAG = "posterr:"  # in the comment that starts every named query's text: /* posterr:page_latest */


class QueryFileError(Exception):
    """A `.sql` file under db/queries is not a list of well-formed named queries."""


# SQLSTATEs that mean the server is going away or refusing connections (class 08 is all of them).
_SERVER_GONE = {"57P01", "57P02", "57P03", "53300"}


def server_unreachable(error: Exception) -> bool:
    """Whether an error says PostgreSQL cannot be reached (no connection, or the server shutting down),
    rather than that one statement failed on a working server."""
    if isinstance(error, (PoolTimeout, psycopg.InterfaceError)):
        return True
    sqlstate = getattr(error, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _SERVER_GONE


def server_name(url: str) -> str:
    """host:port of a connection URL: how logs, metrics and /readyz name a server (no password). A
    URL listing several hosts (libpq's fail-over form, as behind Patroni) names them all."""
    hosts = urlsplit(url).netloc.rpartition("@")[2]
    return ",".join(_host_port(host) for host in hosts.split(",")) or "localhost:5432"


def _host_port(host: str) -> str:
    if ":" not in host or host.endswith("]"):  # no port: "db", "[::1]"
        return f"{host or 'localhost'}:5432"
    name, _, port = host.rpartition(":")
    return f"{name or 'localhost'}:{port or 5432}"


def _looks_dead(conn: psycopg.Connection) -> bool:
    if conn.closed or conn.broken:
        return True
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


@dataclass(frozen=True)
class Query:
    name: str
    kind: str  # one | many | exec
    sql: str
    path: str
    index: str  # what serves it, from the block's `-- index:` comment
    per_call_plan: bool  # `-- Plan: per call`: planned with each call's values, never prepared
    writes: bool  # it may change rows (or lock them): its commit may wait for a synchronous standby


def load_queries(directory: Path = QUERIES_DIR) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    for path in sorted(directory.glob("*.sql")):
        for query in _parse_file(path):
            if query.name in queries:
                raise QueryFileError(f"{path.name}: query {query.name!r} is also defined in {queries[query.name].path}")
            queries[query.name] = query
    if not queries:
        raise QueryFileError(f"no named queries found in {directory}")
    return queries


def _parse_file(path: Path) -> Iterator[Query]:
    header: re.Match | None = None
    lines: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().lower().startswith("-- name:"):
            if header:
                yield _build(path, header, lines)
            header = _HEADER.match(line.strip())
            if not header:
                raise QueryFileError(f"{path.name}:{number}: expected '-- name: snake_case_name :one|:many|:exec'")
            lines = []
        elif header:
            lines.append(line)
        elif line.strip() and not line.lstrip().startswith("--"):
            raise QueryFileError(f"{path.name}:{number}: SQL before the first '-- name:' line")
    if header:
        yield _build(path, header, lines)


def _build(path: Path, header: re.Match, lines: list[str]) -> Query:
    name = header["name"]
    comments = [line.strip() for line in lines if line.lstrip().startswith("--")]
    sql = "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip().rstrip(";")
    if not sql:
        raise QueryFileError(f"{path.name}: query {name!r} has no SQL")
    starts = [n for n, line in enumerate(comments) if _INDEX_NOTE.match(line)]
    if not starts:
        raise QueryFileError(f"{path.name}: query {name!r} has no '-- index:' comment naming what serves it")
    # The note runs from its line to the end of the comment block.
    note = " ".join([_INDEX_NOTE.match(comments[starts[0]])["index"]] +
                    [line.lstrip("-").strip() for line in comments[starts[0] + 1:]])
    per_call = any(line.lower().startswith("-- plan: per call") for line in comments)
    # The name travels with the statement, so pg_stat_statements, pg_stat_activity and the server's
    # slow-statement log say which named query each one is (`python -m posterr top` and `activity`).
    return Query(name, header["kind"], f"{name_comment(name)} {sql}", path.name, note, per_call,
                 writes=bool(_WRITES.search(sql)))


def name_comment(name: str) -> str:
    return f"/* {NAME_TAG}{name} */"


_NAMED = re.compile(r"\s*/\* " + re.escape(NAME_TAG) + r"(\w+) \*/")


def query_name_of(statement: str) -> str | None:
    """The named query a statement's text is (as PostgreSQL shows it), or None for any other."""
    tagged = _NAMED.match(statement)
    return tagged[1] if tagged else None


# The named queries the current request has run, in order, as (name, seconds), while the HTTP edge
# times them for its slow_request line (posterr/edge/plugin.py); None: nobody is timing them.
QUERY_TIMES: ContextVar[list[tuple[str, float]] | None] = ContextVar("posterr_query_times", default=None)


class Session:
    """Runs named queries on one connection (one statement each, or inside a transaction)."""

    def __init__(self, conn: psycopg.Connection, queries: dict[str, Query],
                 watch_commit: Callable[[psycopg.Connection], AbstractContextManager[WatchedCommit]] | None = None):
        self._conn = conn
        self._queries = queries
        self._watch_commit = watch_commit  # outside a transaction: each write commits on its own
        # Set once the transaction it runs has ended: its commit may be on no standby (its wait was
        # cancelled past the deadline), so what it wrote may yet be lost in a fail-over.
        self.commit_unconfirmed = False

    def __call__(self, name: str, **params: Any) -> Any:
        deferred_check.settle()  # a check the request deferred comes before any statement (deferred_check.py)
        times = QUERY_TIMES.get()
        if times is None:
            return self._run(self._queries[name], params)
        started = time.perf_counter()
        try:
            return self._run(self._queries[name], params)
        finally:  # a failed or cancelled query too: it may be what made the request slow
            times.append((name, time.perf_counter() - started))

    def _run(self, query: Query, params: dict[str, Any]) -> Any:
        # A write outside a transaction commits on its own: that commit gets a deadline too.
        if query.writes and self._watch_commit is not None:
            with self._watch_commit(self._conn) as commit:
                commit.arm()
                cursor = self._execute(query, params)
        else:
            cursor = self._execute(query, params)
        if query.kind == "one":
            return cursor.fetchone()
        if query.kind == "many":
            return cursor.fetchall()
        return cursor.rowcount

    def _execute(self, query: Query, params: dict[str, Any]) -> psycopg.Cursor:
        # Prepared at once, once per connection (PostgreSQL's plan_cache_mode `auto` then settles on
        # a generic plan when it costs no more than the custom ones), unless the query must be
        # planned with its values: an unnamed statement always gets a plan for its parameters.
        # Results come in PostgreSQL's binary format: the same Python values as text, at less CPU
        # on both sides (a timestamptz is 8 bytes to copy instead of a string to print and parse).
        return self._conn.execute(query.sql, params, prepare=not query.per_call_plan, binary=True)


def _unconfirmed_commit(server: str) -> None:
    """Mark the request's answer as not acknowledged (its cache work still runs: the write is on the
    primary), or raise outside a request."""
    logs.event(log, "commit_unconfirmed", logging.WARNING, server=server)
    metrics.UNCONFIRMED_COMMITS.inc()
    pending = UNCONFIRMED_COMMITS.get()
    if pending is None:
        raise UnconfirmedCommit()
    pending.append(server)


class Database:
    def __init__(self, url: str, queries: dict[str, Query], *, min_size: int, max_size: int,
                 timeout: float, statement_timeout_ms: int):
        self.name = server_name(url)
        self.queries = queries
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            reconnect_timeout=3600,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": 3,
                "options": f"-c statement_timeout={statement_timeout_ms} -c timezone=UTC",
            },
        )

        self.commit_deadlines = CommitDeadlines(statement_timeout_ms / 1000)
        # After PostgreSQL failed to give a connection, answer 503 at once for a moment instead of
        # making every request wait the pool timeout (no pile-up of waiting workers).
        self._down_until = 0.0

    def open(self) -> None:
        self.pool.open(wait=False)

    def pool_stats(self) -> dict[str, int]:
        return self.pool.get_stats()

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One pooled connection; each named query commits on its own (autocommit)."""
        with self._driver_errors_translated(), self._connection() as conn:
            yield Session(conn, self.queries, self._commit_watched)

    @contextmanager
    def transaction(self, after_commit: Callable[[Session], None] | None = None) -> Iterator[Session]:
        """One connection, one transaction; `after_commit(run)` on the same connection once it has
        committed, unless a commit cancelled past its deadline closed it."""
        with self._driver_errors_translated(), self._connection() as conn:
            with self._commit_watched(conn) as commit, conn.transaction():
                run = Session(conn, self.queries)
                yield run
                commit.arm()
            run.commit_unconfirmed = commit.cancelled
            if after_commit and not conn.closed:
                after_commit(Session(conn, self.queries))

    @contextmanager
    def _commit_watched(self, conn: psycopg.Connection) -> Iterator[WatchedCommit]:
        """A commit with a deadline once armed (posterr/commit_deadline.py). One that succeeded after
        its cancel was sent may be on no synchronous standby: the request's answer becomes a 503
        (UNCONFIRMED_COMMITS). One that failed raises as any statement does."""
        with self.commit_deadlines.watching(conn) as commit:
            yield commit
        # Known from the cancel this process sent, not from PostgreSQL's warning, which a session
        # with client_min_messages = error never gets, and which lc_messages translates.
        if commit.cancelled:
            _unconfirmed_commit(self.name)

    def undo(self, name: str, **params: Any) -> Any:
        """One statement undoing a failed request's own mark (a claim on an idempotency key), tried
        even while new requests are refused at once after a failure (a fail-over refuses some
        requests that did reach the new primary): on a connection the pool has at hand, without waiting
        for one longer than UNDO_WAIT."""
        with self._driver_errors_translated(fast_fail=False, pool_wait_is_outage=False), \
                self._connection(UNDO_WAIT) as conn:
            return Session(conn, self.queries, self._commit_watched)(name, **params)

    @contextmanager
    def _connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """A pooled connection that is not known to be dead. After a PostgreSQL restart every idle
        connection has been closed by the server: its socket turns readable (the goodbye message or
        EOF) while a healthy idle one stays silent. Such a connection is dropped and another taken,
        at no round trip, so service resumes at the first request instead of after a 503."""
        for _ in range(self.pool.max_size + 1):
            conn = self.pool.getconn(timeout)
            if not _looks_dead(conn):
                break
            conn.close()
            self.pool.putconn(conn)  # a closed connection is discarded and replaced by the pool
        try:
            yield conn
        finally:
            self.pool.putconn(conn)

    @contextmanager
    def _driver_errors_translated(self, *, fast_fail: bool = True, pool_wait_is_outage: bool = True) -> Iterator[None]:
        """The one place where psycopg's errors become the project's: a broken unique constraint is
        a DuplicateRow for the service to explain; an unreachable or failing server is a 503. A wait
        for a pooled connection shorter than the pool's own timeout (`pool_wait_is_outage=False`,
        undo's) may end while the pool is only busy or opening a connection: no outage then."""
        if fast_fail and time.monotonic() < self._down_until:
            raise DatabaseUnavailable("PostgreSQL is unavailable", retry_after=FAST_FAIL_SECONDS)
        try:
            yield
        except psycopg.errors.UniqueViolation as error:
            raise DuplicateRow(error.diag.constraint_name) from None
        except psycopg.errors.QueryCanceled:
            raise ServiceUnavailable("the database took too long to answer") from None
        except (PoolTimeout, psycopg.OperationalError, psycopg.InterfaceError) as error:
            if not server_unreachable(error) or (isinstance(error, PoolTimeout) and not pool_wait_is_outage):
                # A deadlock, a serialization failure, a lock or resource limit: this request
                # failed, the server is fine, and the next request should not be refused.
                logs.event(log, "postgres_transient_error", logging.WARNING, error=str(error),
                           sqlstate=getattr(error, "sqlstate", None))
                raise DatabaseUnavailable("the database could not complete the request; retry it",
                                          retry_after=1) from None
            self._down_until = time.monotonic() + FAST_FAIL_SECONDS
            logs.event(log, "postgres_unavailable", logging.WARNING, error=str(error), server=self.name)
            raise DatabaseUnavailable("PostgreSQL is unavailable", retry_after=FAST_FAIL_SECONDS) from None

    def __call__(self, name: str, **params: Any) -> Any:
        with self.session() as run:
            return run(name, **params)

