"""posterr/recent_tokens.py: an entry is as old as its lookup, each request asks for one no older than
it can trust, a revoked token is forgotten at once, and a flood of tokens does not grow the cache
without bound."""

from __future__ import annotations

from posterr.recent_tokens import KNOWN_FOR, LIVE_FOR, RecentTokens

ALICE = "alice's caller"


def test_an_entry_is_as_old_as_its_lookup_and_each_asker_sets_how_old_it_may_be(clock):
    cache = RecentTokens()
    cache.put(b"a" * 32, 10, ALICE, looked_up_at=99.8)
    assert cache.get(b"a" * 32, LIVE_FOR) == ALICE
    clock[0] = 100.3
    assert cache.get(b"a" * 32, LIVE_FOR) is None  # a read must look again
    assert cache.get(b"a" * 32, KNOWN_FOR) == ALICE  # a write that checks the token itself need not
    clock[0] = 99.8 + KNOWN_FOR
    assert cache.get(b"a" * 32, KNOWN_FOR) is None
    assert cache.get(b"b" * 32, KNOWN_FOR) is None


def test_a_revoked_token_is_forgotten(clock):
    cache = RecentTokens()
    cache.put(b"a" * 32, 10, ALICE, looked_up_at=100.0)
    cache.put(b"b" * 32, 11, ALICE, looked_up_at=100.0)
    cache.forget_token(10)
    assert cache.get(b"a" * 32, KNOWN_FOR) is None and cache.get(b"b" * 32, KNOWN_FOR) == ALICE


def test_a_full_cache_drops_what_no_asker_would_take_and_never_holds_more_than_its_size(clock):
    cache = RecentTokens(max_entries=3)
    for n in range(3):
        cache.put(bytes([n]) * 32, n, ALICE, looked_up_at=100.0)
    clock[0] = 100.0 + KNOWN_FOR
    cache.put(b"x" * 32, 9, ALICE, looked_up_at=clock[0])
    assert len(cache._entries) == 1 and cache.get(b"x" * 32, LIVE_FOR) == ALICE
    for n in range(10):
        cache.put(bytes([n]) * 32, n, ALICE, looked_up_at=clock[0])
        assert len(cache._entries) <= 3
