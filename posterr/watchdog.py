"""The request watchdog: a request thread running past POSTERR_REQUEST_TIMEOUT replaces its worker.

gunicorn's `timeout` does not cover this: a gthread worker's heartbeat comes from its main loop, which
keeps beating while one of its threads is stuck, so a request stuck on I/O without a deadline would
hold a thread (and whatever it holds) until the worker is restarted by hand. Every call the app
makes has a deadline; this is the net under the calls that might not (a frozen server, a bug).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable

from posterr import logs, metrics

log = logging.getLogger("posterr.watchdog")


class Watchdog:
    def __init__(self, timeout: float, *, interval: float = 0.5, drain_seconds: float = 5.0):
        self.timeout = timeout
        self.interval = interval
        self.drain_seconds = drain_seconds
        self._running: dict[int, tuple[float, str, str]] = {}  # thread id → (started, request id, route)

    def begin(self, request_id: str, route: str) -> None:
        self._running[threading.get_ident()] = (time.monotonic(), request_id, route)

    def end(self) -> None:
        self._running.pop(threading.get_ident(), None)

    def overdue(self, now: float) -> dict[int, tuple[float, str, str]]:
        return {thread: request for thread, request in list(self._running.items())
                if now - request[0] > self.timeout}

    def start(self, stop_accepting: Callable[[], None], exit_process: Callable[[], None]) -> None:
        """Watch this process's requests from a daemon thread (call it after the fork)."""
        threading.Thread(target=self._watch, args=(stop_accepting, exit_process), daemon=True,
                         name="posterr-watchdog").start()

    def _watch(self, stop_accepting: Callable[[], None], exit_process: Callable[[], None]) -> None:
        while True:
            time.sleep(self.interval)
            stuck = self.overdue(time.monotonic())
            if stuck:
                break
        frames = sys._current_frames()
        for thread, (started, request_id, route) in stuck.items():
            stack = "".join(traceback.format_stack(frames[thread])) if thread in frames else ""
            logs.event(log, "request_timeout", logging.ERROR, request_id=request_id, route=route,
                       running_seconds=round(time.monotonic() - started, 1), timeout_seconds=self.timeout,
                       stack=stack, action="replacing this worker")
        metrics.REQUEST_TIMEOUTS.inc(len(stuck))
        # The other threads' requests may finish (for a while) while nothing new is accepted.
        stop_accepting()
        deadline = time.monotonic() + self.drain_seconds
        while time.monotonic() < deadline and set(self._running) - set(stuck):
            time.sleep(0.05)
        exit_process()
