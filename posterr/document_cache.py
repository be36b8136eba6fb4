"""The document cache: ready-to-send JSON bytes (first feed pages, posts, profiles) in Redis hashes,
so that a hit costs one script call and no JSON encoding.

A hash's key is its name (posterr/keys.py: FEEDS_KEY, post_key, user_key) and the epoch of the
server that holds it; the field `~g` holds the generation it was made in (posterr/redis_client.py,
mechanisms 3 and 4), and `~gen` the generation token of mechanism 5: the first reader to miss puts
its token there, and stores what it computed only if that token is still there, so a slow reader
cannot put back a page older than a write that deleted the hash meanwhile.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from posterr import metrics
from posterr.keys import FEEDS_KEY, document_key, post_key, user_key
from posterr.redis_client import Change, EpochOf, Redis, current_generation, missed


def _stem(name: str) -> str:
    """A document name up to its hash tag: what every name of one family shares."""
    return name.partition("{")[0]


# The document cache's families (posterr/keys.py KEY_FAMILIES) by the stem of their names, taken
# from the builders so that each name's shape is written once.
DOCUMENT_FAMILIES = {_stem(FEEDS_KEY): "feeds", _stem(post_key(0)): "posts", _stem(user_key(0)): "users"}

# KEYS: the document. ARGV: the field, a new token, the TTL, the generation key (Redis.read).
_READ = current_generation("ARGV[4]", "ARGV[2]") + """if redis.call('HGET', KEYS[1], '~g') ~= generation then redis.call('DEL', KEYS[1]) end
local hit = redis.call('HGET', KEYS[1], ARGV[1])
if hit then return {1, hit} end
""" + missed("ARGV[2]", "ARGV[3]")
_STORE = """
if redis.call('HGET', KEYS[1], '~gen') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


class DocumentCache:
    def __init__(self, redis_: Redis):
        self.redis = redis_
        self._read = redis_.script(_READ)
        self._store = redis_.script(_STORE)
        # Each family's (hit, miss) counters, looked up once: `labels()` takes a lock on every call.
        self._lookups = {stem: (metrics.CACHE.labels(family, "hit"), metrics.CACHE.labels(family, "miss"))
                         for stem, family in DOCUMENT_FAMILIES.items()}

    def fetch(self, name: str, field: str, ttl: int, compute: Callable[[], bytes]) -> bytes:
        """The cached bytes of `field` in hash `name`, or compute() stored for the next reader."""
        epoch = self.redis.epoch_of(name)
        if epoch is None:
            return compute()
        key = document_key(name, epoch)
        token = f"{random.getrandbits(64):016x}"  # unique per reader: Python's generator, reseeded in each fork
        reply = self.redis.read(self._read, [key], [field, token, ttl])
        if reply is None or self.redis.epoch_of(name) != epoch:
            return compute()  # Redis failed, or it reconnected to a new server and `key` is a past one's
        hit, value = reply
        hits, misses = self._lookups[_stem(name)]
        if hit:
            hits.inc()
            return value
        misses.inc()
        body = compute()
        self.redis.run(lambda _: self._store(keys=[key], args=[field, value, body]))
        return body

    @staticmethod
    def deletes(*names: str) -> Change:
        """The documents a write changed, to delete before it is answered (Redis.before_answer)."""
        def delete(pipe, epoch_of: EpochOf) -> None:
            for name in names:
                pipe.delete(document_key(name, epoch_of(name)))

        return Change(delete, list(names))
