"""Where a Redis Cluster master's generation lives (posterr/redis_client.py, mechanism 3): a key in the
lowest slot the master serves, found from the client's map by readers and from CLUSTER NODES by the
process that bumps it, so both name the same key."""

from __future__ import annotations

import pytest
from redis.cluster import key_slot

from posterr.keys import GENERATION_KEY, generation_key_in_slot
from posterr.redis_client import lowest_own_slot

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


@pytest.mark.parametrize("slot", [0, 1, 5460, 5461, 10923, 16383])
def test_a_generation_key_hashes_to_its_slot(slot):
    key = generation_key_in_slot(slot)
    assert key.startswith(f"{GENERATION_KEY}:{{")
    assert key_slot(key.encode()) == slot
