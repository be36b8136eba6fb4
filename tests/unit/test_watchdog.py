"""The request watchdog (posterr/watchdog.py), with stand-ins for gunicorn's worker (the logic, not
the process)."""

from __future__ import annotations

import threading

from posterr.watchdog import Watchdog


def test_only_requests_past_the_timeout_are_overdue():
    watchdog = Watchdog(timeout=10)
    watchdog._running = {1: (100.0, "old", "/api/posts"), 2: (105.0, "new", "/api/posts")}
    assert watchdog.overdue(now=111.0) == {1: (100.0, "old", "/api/posts")}
    assert watchdog.overdue(now=109.0) == {}


def test_a_finished_request_is_forgotten():
    watchdog = Watchdog(timeout=0)
    watchdog.begin("r1", "/api/posts")
    watchdog.end()
    assert watchdog.overdue(now=float("inf")) == {}


def test_a_stuck_request_stops_accepting_then_exits_the_process():
    watchdog = Watchdog(timeout=0.05, interval=0.01, drain_seconds=5)
    calls, exited, release = [], threading.Event(), threading.Event()

    def stuck_request():
        watchdog.begin("stuck-1", "/api/posts")
        release.wait(30)
        watchdog.end()

    thread = threading.Thread(target=stuck_request)
    thread.start()
    try:
        watchdog.start(stop_accepting=lambda: calls.append("stop_accepting"),
                       exit_process=lambda: (calls.append("exit"), exited.set()))
        assert exited.wait(10), "the watchdog did not act on a request stuck past its timeout"
        assert calls == ["stop_accepting", "exit"]
    finally:
        release.set()
        thread.join()
