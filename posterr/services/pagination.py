"""Keyset pages: fetch one row more than asked to learn whether a next page exists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from posterr.cursors import CursorCodec
from posterr.errors import ValidationFailed


@dataclass(frozen=True)
class Page:
    body: bytes  # the JSON array, ready to send
    next_cursor: str | None

    def pack(self) -> bytes:
        """One bytes value for the cache: the cursor line, then the body."""
        return (self.next_cursor or "").encode("ascii") + b"\n" + self.body

    @classmethod
    def unpack(cls, packed: bytes) -> Page:
        cursor, _, body = packed.partition(b"\n")
        return cls(body, cursor.decode("ascii") or None)


def cut(rows: list[dict], limit: int, codec: CursorCodec, kind: str,
        position: Callable[[dict], list[Any]], present: Callable[[dict], dict]) -> Page:
    """The first `limit` rows, presented, and a cursor past the last one when more rows exist."""
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = codec.encode(kind, position(rows[-1])) if more else None
    return Page(orjson.dumps([present(row) for row in rows]), next_cursor)


def moment(value: Any) -> datetime:
    """A timestamp read back from a cursor this server signed."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationFailed.of("cursor", "is not a cursor this server issued") from None
