"""A deadline on COMMIT, kept by the client.

Under synchronous replication (Patroni's synchronous_mode_strict) a COMMIT waits until a standby has
the write, and with no standby left it waits forever: PostgreSQL's statement_timeout is switched off
before the commit runs, so nothing on the server ends the wait. One thread per process sends a
cancel request for every COMMIT still running at its deadline; PostgreSQL then answers that COMMIT
with success (the write is on the primary only), and the caller turns a success after a cancel into a
503 (posterr/db.py). That is decided here, from the cancel this process sent, not from the warning
PostgreSQL adds: the warning is translated by lc_messages and not sent at all to a session whose
client_min_messages is `error`.

A connection that was sent a cancel is closed, not reused: the request might reach the server after
the COMMIT returned and cancel the connection's next statement instead.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg

from posterr import logs

log = logging.getLogger("posterr.db")
CANCEL_TIMEOUT = 1.0  # seconds for the cancel request itself (a new connection to the server)
_SLEEP_AT_LEAST = 0.05  # between two looks, so a busy process wakes the thread at most 20 times a second


@dataclass(order=True)
class WatchedCommit:
    deadline: float
    order: int
    conn: psycopg.Connection = field(compare=False)
    deadlines: CommitDeadlines = field(compare=False)
    finished: bool = field(default=False, compare=False)
    cancel_done: threading.Event | None = field(default=None, compare=False)

    def arm(self) -> None:
        """From now on (the COMMIT) the deadline counts."""
        self.deadlines.arm(self)

    @property
    def cancelled(self) -> bool:
        """Whether a cancel was sent (or tried) before the COMMIT returned; final once `watching` has
        ended. A COMMIT that then succeeded has an unknown outcome: its wait for a standby was cut
        short, or the cancel reached the server just after the COMMIT was done. The two cannot be told
        apart without the warning, so both count as unconfirmed: a 503 for a confirmed commit costs
        a retry (with its Idempotency-Key, the one write), a 201 for an unconfirmed one may lose it."""
        return self.cancel_done is not None


class CommitDeadlines:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self._heap: list[WatchedCommit] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._watcher: threading.Thread | None = None  # started by the first commit (after the fork)

    @contextmanager
    def watching(self, conn: psycopg.Connection) -> Iterator[WatchedCommit]:
        """Cancel the connection's statement if it still runs `seconds` after `arm()` was called."""
        watched = WatchedCommit(0.0, next(self._order), conn, self)
        try:
            yield watched
        finally:
            with self._changed:
                watched.finished = True
                cancelling = watched.cancel_done
            if cancelling is not None:
                cancelling.wait(CANCEL_TIMEOUT + 1)
                conn.close()  # discarded by the pool (see the module's docstring)

    def arm(self, watched: WatchedCommit) -> None:
        watched.deadline = time.monotonic() + self.seconds
        with self._changed:
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, daemon=True, name="posterr-commit-deadlines")
                self._watcher.start()
            heapq.heappush(self._heap, watched)
            if self._heap[0] is watched:
                self._changed.notify()

    def _watch(self) -> None:
        while True:
            with self._changed:
                due = self._due(time.monotonic())
                if not due:
                    wait = self._heap[0].deadline - time.monotonic() if self._heap else None
                    self._changed.wait(None if wait is None else max(wait, _SLEEP_AT_LEAST))
                    continue
            for watched in due:
                self._cancel(watched)

    def _due(self, now: float) -> list[WatchedCommit]:
        """Pop what is past its deadline; those whose COMMIT is still running are marked as being
        cancelled (under the lock, so `watching` knows to wait for the cancel and drop the connection)."""
        due = []
        while self._heap and self._heap[0].deadline <= now:
            watched = heapq.heappop(self._heap)
            if not watched.finished:
                watched.cancel_done = threading.Event()
                due.append(watched)
        return due

    def _cancel(self, watched: WatchedCommit) -> None:
        try:
            watched.conn.cancel_safe(timeout=CANCEL_TIMEOUT)
            logs.event(log, "commit_cancelled", logging.WARNING, after_seconds=self.seconds)
        except (psycopg.Error, OSError) as error:
            logs.event(log, "commit_cancel_failed", logging.WARNING, error=str(error))
        finally:
            assert watched.cancel_done is not None
            watched.cancel_done.set()
