"""When each token was last used, to the minute (the `last_used_at` that GET /api/tokens shows):
noted in memory by each request that carries a token, and written by a thread of each process every
FLUSH_EVERY seconds in one statement for all of them. So no request pays a write for it, and a token
used a thousand times a minute costs one write a minute per process, not a thousand."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from posterr import logs

log = logging.getLogger("posterr.tokens")
FLUSH_EVERY = 10.0


class TokenUses:
    def __init__(self, write: Callable[[list[int], list[datetime]], None], every: float = FLUSH_EVERY):
        self._write = write  # (token ids, the minute each was last used)
        self.every = every
        self._pending: dict[int, int] = {}  # token id -> the minute (since the epoch) it was last used
        self._lock = threading.Lock()  # held for a dict operation only, never across the write
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def used(self, token_id: int) -> None:
        minute = int(time.time()) // 60
        with self._lock:
            self._pending[token_id] = minute

    def flush(self) -> None:
        """Writes what was noted since the last flush; what fails to be written is kept for the next."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            self._write(list(pending), [datetime.fromtimestamp(minute * 60, UTC) for minute in pending.values()])
        except Exception as error:  # noqa: BLE001 -- a thread of its own: nothing above it would log it
            logs.event(log, "token_uses_not_written", logging.WARNING, tokens=len(pending), error=str(error))
            with self._lock:
                for token_id, minute in pending.items():
                    self._pending[token_id] = max(minute, self._pending.get(token_id, minute))

    def start(self) -> None:
        """The writing thread: after gunicorn forks, in each worker."""
        self._thread = threading.Thread(target=self._flush_forever, name="posterr-token-uses", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread, then writes what is left (a worker that exits loses no use)."""
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.flush()

    def _flush_forever(self) -> None:
        while not self._stopping.wait(self.every):
            self.flush()
