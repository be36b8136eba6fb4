"""Bulk seeding in SQL (db/seed/seed.sql), step by step with progress on stderr."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psycopg

SEED_FILE = Path(__file__).resolve().parent.parent / "db" / "seed" / "seed.sql"


def steps() -> list[tuple[str, str]]:
    """(name, sql) for each `-- step: NAME` block of the seed file, in order."""
    found: list[tuple[str, str]] = []
    for block in SEED_FILE.read_text(encoding="utf-8").split("-- step: ")[1:]:
        name, _, body = block.partition("\n")
        found.append((name.strip(), body.strip()))
    return found


def seed(database_url: str, *, users: int, posts: int, follows_per_user: int = 20, progress=sys.stderr) -> None:
    params = {"users": users, "posts": posts, "follows_per_user": follows_per_user}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for name, sql in steps():
            started = time.monotonic()
            print(f"seed: {name} …", end="", file=progress, flush=True)
            for statement in filter(None, (part.strip() for part in sql.split(";\n"))):
                conn.execute(statement, params if "%(" in statement else None)
            print(f" done in {time.monotonic() - started:.1f}s", file=progress, flush=True)
