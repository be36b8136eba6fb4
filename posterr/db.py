"""PostgreSQL access: the named-query loader and the connection pool.

Queries live in `db/queries/*.sql`, one per `-- name: NAME :one|:many|:exec` block, in the style of
sqlc and aiosql. They are loaded once at start-up; a duplicate or malformed block stops the start.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from posterr.errors import ServiceUnavailable

QUERIES_DIR = Path(__file__).resolve().parent.parent / "db" / "queries"
_HEADER = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s+:(?P<kind>one|many|exec)\s*$")
_INDEX_NOTE = re.compile(r"^--\s*index:\s*(?P<index>.+?)\s*$", re.IGNORECASE)


class QueryFileError(Exception):
    """A `.sql` file under db/queries is not a list of well-formed named queries."""


@dataclass(frozen=True)
class Query:
    name: str
    kind: str  # one | many | exec
    sql: str
    path: str
    index: str  # what serves it, from the block's `-- index:` comment


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
    notes = [m["index"] for m in map(_INDEX_NOTE.match, lines) if m]
    sql = "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip().rstrip(";")
    if not sql:
        raise QueryFileError(f"{path.name}: query {name!r} has no SQL")
    if not notes:
        raise QueryFileError(f"{path.name}: query {name!r} has no '-- index:' comment naming what serves it")
    return Query(name, header["kind"], sql, path.name, notes[0])


class Session:
    """Runs named queries on one connection (one statement each, or inside a transaction)."""

    def __init__(self, conn: psycopg.Connection, queries: dict[str, Query]):
        self._conn = conn
        self._queries = queries

    def __call__(self, name: str, **params: Any) -> Any:
        query = self._queries[name]
        cursor = self._conn.execute(query.sql, params)
        if query.kind == "one":
            return cursor.fetchone()
        if query.kind == "many":
            return cursor.fetchall()
        return cursor.rowcount


class Database:
    def __init__(self, url: str, queries: dict[str, Query], *, min_size: int, max_size: int,
                 timeout: float, statement_timeout_ms: int):
        self.queries = queries
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            check=ConnectionPool.check_connection,
            reconnect_timeout=3600,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": 3,
                # Optional filters are written `%(x)s IS NULL OR …`: custom plans fold them away.
                "options": f"-c statement_timeout={statement_timeout_ms} -c timezone=UTC "
                           "-c plan_cache_mode=force_custom_plan",
            },
        )

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One pooled connection; each named query commits on its own (autocommit)."""
        with _unavailable_as_503():
            with self.pool.connection() as conn:
                yield Session(conn, self.queries)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with _unavailable_as_503():
            with self.pool.connection() as conn, conn.transaction():
                yield Session(conn, self.queries)

    def __call__(self, name: str, **params: Any) -> Any:
        with self.session() as run:
            return run(name, **params)


@contextmanager
def _unavailable_as_503() -> Iterator[None]:
    try:
        yield
    except PoolTimeout:
        raise ServiceUnavailable("PostgreSQL is unavailable: no database connection could be had in time") from None
    except psycopg.OperationalError as error:
        if isinstance(error, psycopg.errors.QueryCanceled):
            raise ServiceUnavailable("the database took too long to answer") from None
        raise ServiceUnavailable("PostgreSQL is unavailable") from None
