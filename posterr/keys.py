"""Every Redis key name the app uses, built here and nowhere else, and the key table (KEY_FAMILIES).

The part of a name in braces is its Redis Cluster hash tag: keys that one script touches together
share it (so they share a slot), while different posts, users and readers spread over the cluster.
Documents and home timelines carry the epoch of the server that holds them (posterr/redis_client.py,
mechanism 3): their builders give a name, and the key is that name and the epoch.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import NamedTuple

from redis.cluster import key_slot

PREFIX = "posterr"


def daily_quota_key(user_id: int, day: date) -> str:
    return f"{PREFIX}:quota:{{{user_id}}}:{day.isoformat()}"


def rate_limit_key(client: str) -> str:
    return f"{PREFIX}:rl:{client}"


def login_failures_key(kind: str, who: str) -> str:
    """The failed logins of one username (lower case) or one client, kind `user` or `client`: a
    sorted set of attempts scored by their time (posterr/login_limit.py)."""
    return f"{PREFIX}:login:{kind}:{who}"


# Every client's write position (posterr/replicas.py, guarantee 1), in one hash: client -> the
# primary's WAL position after its last write, and POSITIONS_HOLDER -> the run_id of the server
# process that has held them since. One key, so that whatever loses a position (a FLUSHALL, a
# restart that lost its last second of writes, an eviction, a DEL) loses the holder with it and is
# seen. Beside it, in its hash tag: when each position may go (a sorted set, since a hash field has
# no TTL before Redis 7.4), and `settling` (a TTL): the time after a loss during which a position
# may be missing.
WRITE_POSITIONS_KEY = f"{PREFIX}:{{positions}}:wrote"
WRITE_POSITIONS_EXPIRY_KEY = f"{PREFIX}:{{positions}}:wrote-expiry"
POSITIONS_HOLDER = "~holder"
POSITIONS_SETTLING_KEY = f"{PREFIX}:{{positions}}:settling"
# The generation of every cached copy on a standalone server (mechanism 3): a random value, replaced
# by another at each bump, so that no past generation comes back (not even after the key is lost).
GENERATION_KEY = f"{PREFIX}:generation"


@functools.lru_cache(maxsize=64)
def generation_key_in_slot(slot: int) -> str:
    """A Redis Cluster master's generation key: one in the lowest slot it serves (`slot`), since a
    script may only touch keys of its own node. Its tag is the first number that hashes there."""
    tag = 0
    while key_slot(f"{GENERATION_KEY}:{{{tag}}}".encode()) != slot:
        tag += 1
    return f"{GENERATION_KEY}:{{{tag}}}"


FEEDS_KEY = f"{PREFIX}:{{feeds}}"  # the name of the hash of every cached first page of the global and author feeds


def feed_field(order: str, limit: int, author_id: int | None, with_replies: bool) -> str:
    """A first page's field in the feeds hash (not a key)."""
    field = f"author:{author_id}:{order}:{limit}" if author_id else f"all:{order}:{limit}"
    return field + ":replies" if with_replies else field


def post_key(post_id: int) -> str:
    return f"{PREFIX}:post:{{{post_id}}}"


def user_key(user_id: int) -> str:
    return f"{PREFIX}:user:{{{user_id}}}"


def document_key(name: str, epoch: str) -> str:
    """The key of a cached document (FEEDS_KEY, post_key, user_key) in the server of `epoch`."""
    return f"{name}:{epoch}"


def timeline_name(user_id: int) -> str:
    """What a home timeline's keys start with (its hash tag: the reader's id)."""
    return f"{PREFIX}:timeline:{{{user_id}}}"


def timeline_keys(user_id: int, epoch: str) -> list[str]:
    """A home timeline's state hash, entries (sorted set) and followees (set), in one slot."""
    base = timeline_name(user_id)
    return [f"{base}:state:{epoch}", f"{base}:entries:{epoch}", f"{base}:followees:{epoch}"]


class KeyFamily(NamedTuple):
    """Keys of one kind (`python -m posterr cache stats` shows each family's keys, memory and lookups)."""
    name: str  # for a document family, also its `family` label on posterr_cache_lookups_total
    pattern: str  # matches every key of the family (SCAN MATCH)
    holds: str


KEY_FAMILIES = (
    KeyFamily("feeds", f"{FEEDS_KEY}:*", "first pages of the global and author feeds"),
    KeyFamily("posts", f"{PREFIX}:post:*", "post objects"),
    KeyFamily("users", f"{PREFIX}:user:*", "user profiles (without viewer)"),
    KeyFamily("timelines", f"{PREFIX}:timeline:*", "home timelines: state, entries and followees of each reader"),
    KeyFamily("quota", f"{PREFIX}:quota:*", "daily post counters"),
    KeyFamily("rate_limit", f"{PREFIX}:rl:*", "per-client rate limit state (a client: an address, or user:ID)"),
    KeyFamily("login", f"{PREFIX}:login:*", "failed logins in the last 15 minutes, per username and per client"),
    KeyFamily("wrote", f"{WRITE_POSITIONS_KEY}*",
              "each client's last write position and when it may go, with the server holding them (with read replicas)"),
    KeyFamily("positions", POSITIONS_SETTLING_KEY, "after a loss of write positions, the time replicas serve nobody"),
    KeyFamily("generation", f"{GENERATION_KEY}*", "the generation of every cached copy (on a cluster, one per master)"),
)
