"""Keyset pages: fetch one row more than asked to learn whether a next page exists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from posterr.cursors import CursorCodec
from posterr.errors import ValidationFailed
from posterr.validation import MAX_ID


@dataclass(frozen=True)
class Page:
    body: bytes  # the JSON array, ready to send
    next_cursor: str | None
    # "recent": a search among the newest posts only (the Search-Scope header). Not packed: a page
    # the cache holds is never a search.
    search_scope: str | None = None

    def pack(self) -> bytes:
        """One bytes value for the cache: the cursor line, then the body."""
        return (self.next_cursor or "").encode("ascii") + b"\n" + self.body

    @classmethod
    def unpack(cls, packed: bytes) -> Page:
        cursor, _, body = packed.partition(b"\n")
        return cls(body, cursor.decode("ascii") or None)


@dataclass(frozen=True)
class Keyset:
    """How one list pages: the kind its cursors are issued for (a list and its order), and the
    columns of a row's position in that order, last the id. Columns named *_at are timestamps."""
    kind: str
    columns: tuple[str, ...]

    def position(self, row: dict) -> list[Any]:
        return [row[column].isoformat() if column.endswith("_at") else row[column] for column in self.columns]

    def after(self, codec: CursorCodec, cursor: str | None) -> dict[str, Any]:
        """The page's start as its query takes it, `after_<column>` each: None for the first page."""
        values = self._decoded(codec, cursor) if cursor else [None] * len(self.columns)
        return {f"after_{column}": value for column, value in zip(self.columns, values, strict=True)}

    def before(self, codec: CursorCodec, cursor: str | None, start: tuple[Any, ...]) -> dict[str, Any]:
        """The page's start for a query that takes every bound, so that one generic plan walks the
        index from there: `before_<column>` each, `start` (a position past every row) for the first page."""
        values = self._decoded(codec, cursor) if cursor else start
        return {f"before_{column}": value for column, value in zip(self.columns, values, strict=True)}

    def _decoded(self, codec: CursorCodec, cursor: str) -> list[Any]:
        """The position a cursor holds, each value checked: its signature says this server made it,
        but whoever holds the key (a development key left in a deployment) could sign anything."""
        values = codec.decode(self.kind, cursor)
        if not isinstance(values, list) or len(values) != len(self.columns):
            raise _not_issued()
        return [cursor_time(value) if column.endswith("_at") else _cursor_integer(value, COLUMN_MAXIMA.get(column, MAX_ID))
                for column, value in zip(self.columns, values, strict=True)]


def page_of(rows: list[dict], limit: int, codec: CursorCodec, keyset: Keyset, present: Callable[[dict], dict]) -> Page:
    """The first `limit` rows, presented, and a cursor past the last one when more rows exist."""
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = codec.encode(keyset.kind, keyset.position(rows[-1])) if more else None
    return Page(orjson.dumps([present(row) for row in rows]), next_cursor)


def cursor_time(value: Any) -> datetime:
    """A timestamp read back from a cursor this server signed (always with its UTC offset)."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise _not_issued() from None
    if moment.tzinfo is None:
        raise _not_issued()
    return moment


def _cursor_integer(value: Any, maximum: int) -> int:
    """An id or a score read back from a cursor: a JSON integer from 0 to what its column holds."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise _not_issued()
    return value


def _not_issued() -> ValidationFailed:
    return ValidationFailed.of("cursor", "is not a cursor this server issued")


# The bounds of a window left open: the one-statement page queries (posts_page_latest, …) take
# every bound, so that one generic plan serves every page; an unset one is one no post lies beyond.
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
MAX_SCORE = 2**31 - 1  # repost_count + quote_count, an integer
COLUMN_MAXIMA = {"score": MAX_SCORE}  # every other integer column of a keyset is a bigint id
NEWEST_FIRST_START = (LATEST, MAX_ID)  # the (time, id) position every row comes after, newest first


def newest_first_window(after: tuple[datetime, int] | None, since: datetime | None,
                        until: datetime | None) -> dict[str, Any]:
    """The bounds of a newest-first page: posts at or after `since`, and before both the cursor's
    (created_at, id) and `until` (exclusive): the position (until, 0) comes before every post of
    that instant, since ids are positive."""
    before = min(after or NEWEST_FIRST_START, (until, 0) if until else NEWEST_FIRST_START)
    return {"since": since or EARLIEST, "before_created_at": before[0], "before_id": before[1]}


def trending_window(after: tuple[int, datetime, int] | None) -> dict[str, Any]:
    """The bounds of a trending page: before the cursor's (score, created_at, id), if any."""
    score, created_at, last_id = after or (MAX_SCORE, *NEWEST_FIRST_START)
    return {"before_score": score, "before_created_at": created_at, "before_id": last_id}
