"""posterr/recent_tokens.py: an entry lives TTL seconds from before its lookup, a revoked token is
forgotten at once, and a flood of tokens does not grow the cache without bound."""

from __future__ import annotations

from posterr import recent_tokens
from posterr.recent_tokens import RecentTokens

ALICE = "alice's caller"


def test_an_entry_lives_ttl_seconds_from_before_its_lookup(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(recent_tokens.time, "monotonic", lambda: now[0])
    cache = RecentTokens(ttl=0.5)
    cache.put(b"a" * 32, 10, ALICE, looked_up_at=99.8)
    assert cache.get(b"a" * 32) == ALICE
    now[0] = 100.3
    assert cache.get(b"a" * 32) is None
    assert cache.get(b"b" * 32) is None


def test_a_revoked_token_is_forgotten():
    cache = RecentTokens(ttl=60)
    cache.put(b"a" * 32, 10, ALICE, looked_up_at=recent_tokens.time.monotonic())
    cache.forget_token(10)
    assert cache.get(b"a" * 32) is None


def test_a_full_cache_drops_what_expired_and_never_holds_more_than_its_size(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(recent_tokens.time, "monotonic", lambda: now[0])
    cache = RecentTokens(ttl=1, max_entries=3)
    for n in range(3):
        cache.put(bytes([n]) * 32, 10, ALICE, looked_up_at=0.0)
    now[0] = 5.0
    cache.put(b"x" * 32, 10, ALICE, looked_up_at=5.0)
    assert len(cache._entries) == 1 and cache.get(b"x" * 32) == ALICE
    for n in range(10):
        cache.put(bytes([n]) * 32, 10, ALICE, looked_up_at=5.0)
        assert len(cache._entries) <= 3
