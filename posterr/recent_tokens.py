"""The live tokens this process has looked up in the last moment, by digest: a request that sends
a token it sent a moment ago costs no round trip to PostgreSQL to say whose it is.

A revoked or expired token must be refused by every worker within a second, whatever state Redis is
in, so nothing is shared: each process keeps an entry for TTL seconds, counted from before its
lookup began. Writes check their token again in their own transaction (posterr/services/acting.py),
so this can only delay the refusal of a read or of the rate limit's identity, never admit a write."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

TTL = 0.5
MAX_ENTRIES = 10_000


class Entry(NamedTuple):
    expires: float  # time.monotonic()
    token_id: int
    holder: Any  # what the lookup found (services/acting.py's Caller)


class RecentTokens:
    def __init__(self, ttl: float = TTL, max_entries: int = MAX_ENTRIES):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[bytes, Entry] = {}

    def get(self, digest: bytes) -> Any | None:
        entry = self._entries.get(digest)
        if entry is None or time.monotonic() >= entry.expires:
            return None
        return entry.holder

    def put(self, digest: bytes, token_id: int, holder: Any, looked_up_at: float) -> None:
        """`looked_up_at`: time.monotonic() before the lookup began (the entry is as old as that)."""
        if len(self._entries) >= self.max_entries:
            self._drop_expired()
        self._entries[digest] = Entry(looked_up_at + self.ttl, token_id, holder)

    def forget_token(self, token_id: int) -> None:
        """Forgets a token this process has just revoked."""
        for digest, entry in list(self._entries.items()):
            if entry.token_id == token_id:
                self._entries.pop(digest, None)

    def _drop_expired(self) -> None:
        now = time.monotonic()
        live = {digest: entry for digest, entry in list(self._entries.items()) if entry.expires > now}
        if len(live) >= self.max_entries:  # all live: a flood of tokens; start over rather than grow
            live = {}
        self._entries = live
