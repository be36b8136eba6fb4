"""The pure parts of replica routing (posterr/replicas.py): a replica's state and lag."""

from __future__ import annotations

import math

import pytest

from posterr.replicas import Replica, Status


class _NoDatabase:
    name = "replica:5432"


def _replica(status: Status) -> Replica:
    replica = Replica("postgres://replica:5432/posterr", _NoDatabase())
    replica.status = status
    return replica


@pytest.mark.parametrize("status, now, lag, state", [
    (Status(), 5.0, math.inf, "down"),                                   # never checked
    (Status(100, 4.0, None), 5.0, 1.0, "ok"),
    (Status(100, 4.0, None), 6.0, 2.0, "ok"),                            # at the limit
    (Status(100, 4.0, None), 6.5, 2.5, "lagging"),                       # the bound grows until a check
    (Status(100, None, None), 6.5, math.inf, "lagging"),                 # behind every sample
    (Status(100, 4.0, "unreachable: refused"), 4.5, math.inf, "down"),  # whatever it replayed before
    (Status(error="not a replica (promoted?)"), 4.5, math.inf, "down"),   # a primary that is not ours
    (Status(error="the primary the app writes to", primary=True), 4.5, math.inf, "primary"),
])
def test_a_replica_serves_only_while_its_lag_is_known_and_within_the_limit(status, now, lag, state):
    replica = _replica(status)
    assert replica.lag(now) == pytest.approx(lag)
    assert replica.readiness(now, max_lag=2.0)["state"] == state
