"""The data tier as services see it: the primary and, when DATABASE_REPLICA_URLS is set, its read
replicas. It owns where a read goes and what a committed write leaves behind for read-your-writes
(posterr/replicas.py, guarantee 1); posterr/db.py stays with queries and connections."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg

from posterr import logs, metrics
from posterr.db import Database, Session
from posterr.errors import DatabaseUnavailable
from posterr.replicas import Replicas

log = logging.getLogger("posterr.db")
T = TypeVar("T")


class DataTier:
    def __init__(self, primary: Database, replicas: Replicas | None = None):
        self.primary = primary
        self.replicas = replicas

    @property
    def name(self) -> str:
        """The primary as DATABASE_URL names it (host:port; several hosts behind a fail-over cluster)."""
        return self.primary.name

    def start(self) -> None:
        """Open the pools: after gunicorn forks, never in the master (sockets do not survive a fork)."""
        self.primary.open()
        if self.replicas:
            self.replicas.start()

    def stop(self) -> None:
        if self.replicas:
            self.replicas.stop()
        self.primary.close()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction on the primary; with replicas, the client's write position is kept once
        it commits."""
        if not self.replicas:
            with self.primary.transaction() as run:
                yield run
            return
        positions: list[str | None] = []
        with self.primary.transaction(after_commit=lambda run: positions.append(_write_position(run))) as run:
            yield run
        # None (unknown: the connection was closed by a commit cancelled past its deadline): no
        # replica may serve this client for a while.
        self.replicas.remember_write(positions[0] if positions else None)

    def read(self, work: Callable[[Session], T]) -> T:
        """work(run) on a replica that may serve the current client, else on the primary; a replica
        that fails is left for the primary, with no error to the client. Not for what is stored in
        Redis: that is read_primary."""
        if self.replicas:
            replica = self.replicas.choose()
            if replica is not None:
                try:
                    with replica.db.session() as run:
                        result = work(run)
                    metrics.DB_READS.labels("replica").inc()
                    return result
                except DatabaseUnavailable as error:
                    self.replicas.failed(replica, error)
        result = self.read_primary(work)
        metrics.DB_READS.labels("primary").inc()
        return result

    def read_primary(self, work: Callable[[Session], T]) -> T:
        """work(run) on the primary: reads whose result is stored in Redis, or must be current."""
        with self.primary.session() as run:
            return work(run)

    def undo(self, name: str, **params: Any) -> Any:
        return self.primary.undo(name, **params)

    def pool_stats(self) -> dict[str, int]:
        return self.primary.pool_stats()

    def __call__(self, name: str, **params: Any) -> Any:
        """One statement on the primary, committed on its own."""
        return self.primary(name, **params)


def _write_position(run: Session) -> str | None:
    """Where the WAL ends after this connection's commit; None when that cannot be asked (the write
    has committed, so this must not fail the request)."""
    try:
        return run("write_position")["position"]
    except psycopg.Error as error:
        logs.event(log, "write_position_unknown", logging.WARNING, error=str(error))
        return None
