"""The feed request (GET /api/posts, search) as a value, and the pure decisions made from it: how its
page is read and from which server. services/posts.py runs what these decide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Any

from posterr import validation
from posterr.cursors import CursorCodec
from posterr.services.pagination import Keyset

KEYSETS = {"latest": Keyset("posts:latest", ("created_at", "id")),
           "trending": Keyset("posts:trending", ("score", "created_at", "id"))}


class Source(Enum):
    """How the page's rows are read."""
    HOME_TIMELINE = "the reader's home timeline in Redis, then posts_by_ids"
    ONE_STATEMENT = "one prepared statement that reads the page with its posts"
    IDS_THEN_POSTS = "the page's ids, planned with their values, then posts_by_ids"


class Server(Enum):
    """Where the page is read."""
    PRIMARY = "the primary"  # a home timeline: built from it, so its ids are read against it
    REPLICA = "a replica that may serve the client, else the primary"
    CACHE = "the document cache, filled from the primary"  # the first page of a global or author feed


@dataclass(frozen=True)
class FeedQuery:
    author_id: int | None
    followed_by: int | None
    keyword: str | None
    start: date | None
    end: date | None
    with_replies: bool
    order: str  # latest | trending
    size: int
    after: dict[str, Any]  # after_score, after_created_at, after_id: the cursor's position, or all None

    @classmethod
    def parse(cls, params: dict[str, str | None], cursors: CursorCodec) -> FeedQuery:
        """The query string's parameters, validated (a ValidationFailed names the first bad one)."""
        author_id = validation.query_id("author_id", params.get("author_id"))
        followed_by = validation.query_id("followed_by", params.get("followed_by"))
        keyword = validation.keyword(params.get("keyword"))
        start, end = validation.date_range(validation.day("start_date", params.get("start_date")),
                                           validation.day("end_date", params.get("end_date")))
        with_replies = validation.flag("include_replies", params.get("include_replies"))
        order = validation.sort_order(params.get("sort_by"))
        size = validation.limit(params.get("limit"))
        after = {"after_score": None, **KEYSETS[order].after(cursors, params.get("cursor"))}
        return cls(author_id, followed_by, keyword, start, end, with_replies, order, size, after)

    @property
    def keyset(self) -> Keyset:
        return KEYSETS[self.order]

    @property
    def last(self) -> tuple[datetime, int] | None:
        """The (created_at, id) the page starts after: None for a first page."""
        return (self.after["after_created_at"], self.after["after_id"]) if self.after["after_id"] else None

    @property
    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """The date range as instants: its first (inclusive) and the one after its last (exclusive)."""
        return _day_start(self.start), _day_after(self.end)

    @property
    def recent_only(self) -> bool:
        """A keyword that no trigram can serve (contract v2.1): searched among the newest posts only."""
        return self.keyword is not None and not validation.has_trigram(self.keyword)

    def filters(self, floor: dict[str, Any] | None = None) -> dict[str, Any]:
        """The parameters of the page queries (db/queries/posts.sql), one row more than the page;
        `floor` (recent_posts_floor's row) bounds a recent_only search, and None leaves it unbounded."""
        since, until = self.bounds
        return {"author_id": self.author_id, "followed_by": self.followed_by,
                "pattern": validation.like_pattern(self.keyword) if self.keyword else None,
                "since": since, "until": until,
                "floor_created_at": floor and floor["created_at"], "floor_id": floor and floor["id"],
                "include_replies": self.with_replies, "limit": self.size + 1, **self.after}

    def source(self) -> Source:
        if self.followed_by and self.order == "latest" and not any(
                (self.author_id, self.keyword, self.start, self.end, self.with_replies)):
            return Source.HOME_TIMELINE
        # A keyword, a followed_by or trending within dates are planned with their values.
        if not (self.keyword or self.followed_by) and (self.order == "latest" or not (self.start or self.end)):
            return Source.ONE_STATEMENT
        return Source.IDS_THEN_POSTS

    def server(self) -> Server:
        if self.source() is Source.HOME_TIMELINE:
            return Server.PRIMARY  # a replica may lack a post that a push has already put in the timeline
        if any((self.followed_by, self.keyword, self.start, self.end, self.after["after_id"])):
            return Server.REPLICA
        return Server.CACHE


def _day_start(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


def _day_after(day: date | None) -> datetime | None:
    """The end of an inclusive date range as an exclusive bound (none after the last date)."""
    return _day_start(day + timedelta(days=1)) if day and day < date.max else None
