"""Holding a row lock from a test, and knowing when the app's statements are really waiting on it."""

from __future__ import annotations


def waiting_behind(sql, holder_pid: int, fragment: str = "") -> int:
    """How many backends wait, directly or through another waiter, on locks held by backend
    `holder_pid` (pg_blocking_pids, so queues count too: a second INSERT of one unique key waits on
    the first inserter, not on the holder), counting only statements that contain `fragment`."""
    rows = sql.execute(
        "SELECT pid, pg_blocking_pids(pid), query FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'").fetchall()
    behind, grew = {holder_pid}, True
    while grew:
        grew = False
        for pid, blockers, _ in rows:
            if pid not in behind and behind.intersection(blockers):
                behind.add(pid)
                grew = True
    return sum(1 for pid, _, query in rows if pid in behind and pid != holder_pid and fragment in query)
