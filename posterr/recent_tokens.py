"""The live tokens this process has looked up, by digest: a request that sends a token sent a moment
ago costs no round trip to PostgreSQL to say whose it is.

A token's user and scopes never change; only whether it is live does. A revoked or expired token must
be refused by every worker within a second, whatever state Redis is in, so nothing is shared, and a
request asks for an entry no older than it can trust:
- LIVE_FOR (half a second, counted from before the lookup began) where the answer rests on it: a
  read, a login, anything but the writes below;
- KNOWN_FOR (minutes) for the writes that check their token again in their own transaction
  (posterr/services/acting.py, `check_still_writes`): there the entry only says who acts and with
  which scopes, and a revoked token is refused by the transaction, at no round trip of its own."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

LIVE_FOR = 0.5
KNOWN_FOR = 300.0
MAX_ENTRIES = 10_000


class Entry(NamedTuple):
    looked_up_at: float  # time.monotonic() before the lookup began
    token_id: int
    holder: Any  # what the lookup found (services/acting.py's Caller)


class RecentTokens:
    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._entries: dict[bytes, Entry] = {}

    def get(self, digest: bytes, max_age: float) -> Any | None:
        """What the lookup of this digest found, if it began less than `max_age` seconds ago."""
        entry = self._entries.get(digest)
        if entry is None or time.monotonic() - entry.looked_up_at >= max_age:
            return None
        return entry.holder

    def put(self, digest: bytes, token_id: int, holder: Any, looked_up_at: float) -> None:
        """`looked_up_at`: time.monotonic() before the lookup began (the entry is as old as that)."""
        if len(self._entries) >= self.max_entries:
            self._drop_expired()
        self._entries[digest] = Entry(looked_up_at, token_id, holder)

    def forget_token(self, token_id: int) -> None:
        """Forgets a token this process has just revoked."""
        for digest, entry in list(self._entries.items()):
            if entry.token_id == token_id:
                self._entries.pop(digest, None)

    def _drop_expired(self) -> None:
        now = time.monotonic()
        live = {digest: entry for digest, entry in list(self._entries.items()) if now - entry.looked_up_at < KNOWN_FOR}
        if len(live) >= self.max_entries:  # all live: a flood of tokens; start over rather than grow
            live = {}
        self._entries = live
