"""Bearer tokens for the load tools' seeded users, issued in bulk straight into their own database
(`make bench`'s token row, `make loadtest`'s returning members), the way `python -m posterr tokens
issue` issues one: seeded users have no password, and thousands of logins would measure Argon2
(about 40 ms of CPU each, by design) rather than the requests under test.

The tokens are secrets even in a throw-away database: they go only to a file readable by its owner
alone, inside a temporary folder the tool deletes, never to stdout, logs or the results' JSON."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from posterr.db import Session, load_queries
from posterr.services import tokens
from posterr.services.acting import SCOPES

MOST = 10_000  # tokens issued at most: one round trip each (about 2 s for 10,000)


def spread(low: int, high: int, count: int) -> list[int]:
    """Up to `count` distinct ids evenly spread over low..high (every one when the range holds no
    more), so that users drawn from them stand for the whole range."""
    size = high - low + 1
    if size <= 0 or count <= 0:
        return []
    if count >= size:
        return list(range(low, high + 1))
    return [low + (index * size) // count for index in range(count)]


def issue(database_url: str, user_ids: list[int], name: str) -> list[str]:
    """A new read and write token, never expiring, for each of these users (in their order), in one
    transaction; api_tokens is analyzed afterwards, as the seed's tables are, so that the app's
    first plans see its rows."""
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        run = Session(conn, load_queries())
        issued = [tokens.issue(run, user_id, list(SCOPES), name, None)["token"] for user_id in user_ids]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE api_tokens")
    return issued


def write_private(path: Path, lines: list[str]) -> Path:
    """`lines`, one a line, in a new file only its owner may read (created so: never readable by others,
    not even for a moment)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.writelines(f"{line}\n" for line in lines)
    return path
