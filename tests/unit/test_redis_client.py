"""posterr/redis_client.py without a server. The breaker (mechanism 2): after a failure, no call for
`retry_after`. Where a Redis Cluster master's generation lives (mechanism 3): a key in the lowest
slot the master serves, found from the client's map by readers and from CLUSTER NODES by the process
that bumps it, so both name the same key (the key made for a slot: tests/unit/test_keys.py)."""

from __future__ import annotations

import pytest
import redis

from posterr.redis_client import Redis, lowest_own_slot

NODES = """\
27e5 127.0.0.1:7712@7812 master - 0 1796248664604 2 connected 5461-10922
2c6a 127.0.0.1:7713@7813 {flags} - 0 1796248664404 3 connected {slots}
7198 127.0.0.1:7711@7811 master - 0 1796248663000 1 connected 0-5460
"""


@pytest.mark.parametrize("flags, slots, lowest", [
    ("myself,master", "10923-16383", 10923),
    ("myself,master", "16000-16383 10923-12000", 10923),  # ranges in any order
    ("myself,master", "12001 10923-12000", 10923),  # a single slot
    ("myself,master", "[10922->-27e5] 10923-16383", 10923),  # a slot being imported is not served yet
    ("master,myself", "0-5", 0),
    ("myself,master", "", None),  # serves no slot
    ("master", "10923-16383", None),  # "myself" is another line: none here
])
def test_the_lowest_slot_the_answering_node_serves(flags, slots, lowest):
    assert lowest_own_slot(NODES.format(flags=flags, slots=slots)) == lowest


def test_after_a_redis_failure_calls_skip_redis_until_retry_after():
    """The breaker (posterr/redis_client.py, mechanism 2): one failure, then no call for `retry_after`."""
    calls = []

    def times_out(_client):
        calls.append(1)
        raise redis.TimeoutError("Timeout reading from socket")

    breaker = Redis("redis://127.0.0.1:1/0", timeout=0.1, retry_after=60, invalidation_deadline=1, reconnect_interval=0.5)
    breaker.cluster = False  # nothing listens on port 1: as if a standalone server had answered once
    assert [breaker.run(times_out) for _ in range(5)] == [None] * 5
    assert len(calls) == 1
    breaker._down_until = 0.0  # the interval has passed
    assert breaker.run(lambda _client: "answered") == "answered"
