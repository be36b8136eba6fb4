"""The client's deadline on COMMIT (posterr/commit_deadline.py), over a stand-in connection: a commit
still running at its deadline is sent a cancel, its connection closed, and it is known as cancelled
(what makes a commit unconfirmed: posterr/db.py); one that finished is left alone."""

from __future__ import annotations

import threading

from posterr.commit_deadline import CommitDeadlines


class StandInConnection:
    def __init__(self):
        self.cancelled = threading.Event()
        self.closed = False

    def cancel_safe(self, timeout: float) -> None:
        self.cancelled.set()

    def close(self) -> None:
        self.closed = True


def test_a_commit_running_past_its_deadline_is_cancelled_and_its_connection_closed():
    deadlines = CommitDeadlines(0.05)
    stuck = StandInConnection()
    with deadlines.watching(stuck) as commit:
        commit.arm()
        assert stuck.cancelled.wait(5), "no cancel was sent"
    assert stuck.closed
    assert commit.cancelled


def test_a_commit_finished_in_time_is_never_cancelled():
    deadlines = CommitDeadlines(0.05)
    quick, stuck = StandInConnection(), StandInConnection()
    with deadlines.watching(quick) as in_time:
        in_time.arm()
    # Deadlines are served in order: once the later one is cancelled, the earlier one was looked at.
    with deadlines.watching(stuck) as commit:
        commit.arm()
        assert stuck.cancelled.wait(5)
    assert not quick.cancelled.is_set() and not quick.closed
    assert not in_time.cancelled


def test_an_unarmed_watch_has_no_deadline():
    """A transaction whose body failed rolls back without arming: nothing is sent."""
    deadlines = CommitDeadlines(0.01)
    idle, stuck = StandInConnection(), StandInConnection()
    with deadlines.watching(idle) as unarmed, deadlines.watching(stuck) as commit:
        commit.arm()
        assert stuck.cancelled.wait(5)
    assert not idle.cancelled.is_set() and not idle.closed
    assert not unarmed.cancelled
