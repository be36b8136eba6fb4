"""Rows to API objects: the field names and formats of the API (docs/api.md), in one place."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, always with microseconds: 2026-11-26T06:38:45.123456Z."""
    # What PostgreSQL gives (UTC, a four-digit year, microseconds) goes through orjson, the cheapest
    # way (a feed page formats a couple of dozen of these; docs/performance.md has the figures).
    # orjson leaves out a zero fraction and pads years below 1000 differently, so those take the
    # slower path.
    if moment.tzinfo is UTC and moment.microsecond and moment.year >= 1000:
        return orjson.dumps(moment, option=orjson.OPT_UTC_Z)[1:-1].decode("ascii")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def joined(moment: datetime) -> str:
    """The creation date in UTC, unpadded: March 5, 2021."""
    day = moment.astimezone(UTC)
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"


def user(row: dict, followed_by_viewer: bool | None = None) -> dict:
    body = {
        "id": row["id"],
        "username": row["username"],
        "created_at": timestamp(row["created_at"]),
        "joined": joined(row["created_at"]),
        "posts_count": row["posts_count"],
        "followers_count": row["followers_count"],
        "following_count": row["following_count"],
    }
    if followed_by_viewer is not None:
        body["followed_by_viewer"] = followed_by_viewer
    return body


def post(row: dict) -> dict:
    original = None
    if row["original_id"] is not None:
        original = {
            "id": row["original_id"],
            "user_id": row["original_user_id"],
            "username": row["original_username"],
            "type": row["original_type"],
            "content": row["original_content"],
            "created_at": timestamp(row["original_created_at"]),
        }
    reply_to = None
    if row["reply_to_id"] is not None:
        reply_to = {"id": row["reply_to_id"], "user_id": row["reply_to_user_id"], "username": row["reply_to_username"]}
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "username": row["username"],
        "type": row["type"],
        "content": row["content"],
        "repost_id": row["repost_id"],
        "original": original,
        "reply_to_id": row["reply_to_id"],
        "reply_to": reply_to,
        "repost_count": row["repost_count"],
        "quote_count": row["quote_count"],
        "reply_count": row["reply_count"],
        "created_at": timestamp(row["created_at"]),
    }


def token(row: dict) -> dict:
    """A token as its owner lists it: never the token, only its hint."""
    return {
        "id": row["id"],
        "name": row["name"],
        "scopes": row["scopes"],
        "created_at": timestamp(row["created_at"]),
        "expires_at": optional_timestamp(row["expires_at"]),
        "last_used_at": optional_timestamp(row["last_used_at"]),
        "hint": row["hint"],
    }


def new_token(row: dict, secret: str) -> dict:
    """A token as it is issued: the one answer that holds it."""
    return {"id": row["id"], "token": secret, "scopes": row["scopes"], "name": row["name"],
            "created_at": timestamp(row["created_at"]), "expires_at": optional_timestamp(row["expires_at"])}


def optional_timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else timestamp(moment)
