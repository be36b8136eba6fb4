"""The job that keeps keyword search's segments (db/migrations/20261208100000_add_post_search_segments.sql):
a thread of each app process asks PostgreSQL every SEAL_EVERY seconds to seal the open segment of
post_search once it holds a segment's worth of posts. PostgreSQL lets one process seal at a time and
the others return at once, so any number of processes may run it. If none runs it, nothing breaks:
new posts stay in the open segment, and a rare keyword's search pays for its matches there, as
it did over the whole table before segments."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from posterr import logs

log = logging.getLogger("posterr.search")
SEAL_EVERY = 60.0


class SegmentSealer:
    def __init__(self, seal: Callable[[], int], every: float = SEAL_EVERY):
        self._seal = seal  # the segments it made
        self.every = every
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def seal(self) -> None:
        try:
            made = self._seal()
        except Exception as error:  # noqa: BLE001 -- a thread of its own: nothing above it would log it
            logs.event(log, "search_segments_not_sealed", logging.WARNING, error=str(error))
            return
        if made:
            logs.event(log, "search_segments_sealed", segments=made)

    def start(self) -> None:
        """After gunicorn forks, in each worker."""
        self._thread = threading.Thread(target=self._seal_forever, name="posterr-segment-sealer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _seal_forever(self) -> None:
        while not self._stopping.wait(self.every):
            self.seal()
