"""The processes of this machine as /proc shows them, for the tools that kill and wait for servers
(the soak, tests/cluster): which are alive, and whose children they are."""

from __future__ import annotations

from pathlib import Path

DEAD = ("Z", "X")  # a zombie (dead, not yet reaped) or on its way out


def threads() -> list[tuple[int, str, int, int]]:
    """(pid, state, parent pid, process group) of every thread of every process. Per thread: a
    process killed with its threads shows its main thread as a zombie in /proc/PID/stat while the
    others are still exiting and holding its files, so its listening socket still takes connections,
    which the kernel resets once the last thread is gone (18 of 30 kills of an 8-thread process were
    seen so)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/task/[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone while we looked
        found.append((int(stat.parents[2].name), fields[0], int(fields[1]), int(fields[2])))
    return found


def group_alive(pgid: int) -> bool:
    """Whether a thread of the process group still runs."""
    return any(pgrp == pgid and state not in DEAD for _, state, _, pgrp in threads())


def live_children(pid: int) -> set[int]:
    """The child processes of `pid` with a live thread."""
    return {child for child, state, ppid, _ in threads() if ppid == pid and state not in DEAD}
