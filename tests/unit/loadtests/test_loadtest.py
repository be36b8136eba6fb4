"""make loadtest's arithmetic (loadtests/loadtest.py): how many users need a seeded account's token,
and locust's run time."""

from __future__ import annotations

from loadtests.loadtest import returning_members, run_seconds


def test_every_user_but_the_newcomers_needs_a_token():
    assert returning_members(200, 10) == 180
    assert returning_members(5, 10) == 5  # the first newcomer is the 10th user
    assert returning_members(200, 0) == 200 and returning_members(200, 100) == 0


def test_run_time_is_read_as_locust_reads_it():
    assert [run_seconds(text) for text in ("60s", "300", "20m", "1h30m", "3h20m10s")] == [60, 300, 1200, 5400, 12010]
    assert run_seconds("") is None and run_seconds("ten minutes") is None
