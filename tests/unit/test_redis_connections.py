"""posterr/redis_connections.py: how long a write that Redis refused waits (mechanism 3)."""

from __future__ import annotations

import pytest

from posterr.redis_connections import Refusals


def test_no_refusal_means_no_wait(clock):
    assert Refusals(interval=1.0).seen_by_all_at() <= clock[0]


def test_a_refusal_waits_until_connections_older_than_it_are_past_their_age(clock):
    refusals = Refusals(interval=1.0)
    refusals.seen(("redis", 6379))
    clock[0] = 100.5
    refusals.seen(("redis", 6379))  # the same refusal, seen again: it began at 100
    assert refusals.seen_by_all_at() == 101.0


def test_the_latest_refusal_of_several_servers_counts(clock):
    refusals = Refusals(interval=1.0)
    refusals.seen(("a", 1))
    clock[0] = 100.4
    refusals.seen(("b", 1))
    assert refusals.seen_by_all_at() == pytest.approx(101.4)


def test_a_server_that_accepts_again_ends_its_refusal(clock):
    refusals = Refusals(interval=1.0)
    refusals.seen(("a", 1))
    refusals.ended(("a", 1))
    assert refusals.seen_by_all_at() <= clock[0]
