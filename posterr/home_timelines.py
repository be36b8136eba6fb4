"""Home timelines in Redis: what each reader's "Following" feed (newest first) is read from.

One sorted set per reader holds the newest `POSTERR_TIMELINE_SIZE` posts of the accounts they
follow, so a page costs the same whether they follow 20 accounts or 2,000. PostgreSQL stays the
truth: a timeline is built from it on a miss and is only ever an exact copy of a prefix of what the
pull query (page_followed_latest) returns. The rules that keep it exact:

1. Members are `<created_at in µs, 17 digits>:<post id, 19 digits>` with score 0, so the set's
   lexicographic order is the feed's order, (created_at, id), and a keyset cursor is a member.
2. Fan-out on write: a new post is pushed, before it is answered, into the timeline of each
   follower that has one. The followers are read after the post's row lock is held, so a follow
   that commits first is seen here, and one that commits later rebuilds from a snapshot that holds
   the post. An author with more than `POSTERR_FANOUT_MAX_FOLLOWERS` followers is not pushed: their
   posts are merged in at read time (timeline_followees says which followees those are).
3. A push lands only in a timeline whose followees include the author, so a push that arrives after
   an unfollow (and after the rebuild that followed it) cannot add a post from someone unfollowed.
4. A build marks the timeline (a token in its state hash) before it reads PostgreSQL, and stores only
   if the mark is still there and nothing was stored meanwhile; a push to a timeline being built
   removes the mark, so a build that may have missed a post is served once and never stored.
5. Entries are the newest posts, with no gap: a push is added and the oldest entries beyond the
   size trimmed (a push older than all of them goes at once), and a trimmed timeline is marked
   incomplete. A page that an incomplete timeline cannot fill comes from PostgreSQL.
6. A follow, an unfollow, or an author crossing the fan-out limit deletes the timelines whose
   followees it changes, before it is answered, and so does a follow or unfollow that finds nothing
   to change (the retry of one whose worker died between its commit and this); keys carry the epoch
   (see redis_client.py) and expire after `POSTERR_TIMELINE_TTL`, which bounds how long a push lost
   with a crashed worker is missed.
7. A timeline is its three keys (state, entries, followees), and Redis may lose any one of them (an
   eviction, a key expiring before the others, `cache flush`): both sets hold a SENTINEL member so
   that they exist even when empty, and a timeline missing a key is absent, read as a miss and never
   pushed to; what is left of it is deleted in the same script. So is one of a past generation
   (redis_client.py, mechanism 3), which a write that Redis refused may have left without its post.
8. A commit that a fail-over lost may have been pushed already, and the new primary may hand its id
   to another post: every page read from a timeline is checked against PostgreSQL (each entry's id
   and time, services/posts.py), and a timeline with one wrong entry is deleted and the page read
   from PostgreSQL.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from posterr.keys import timeline_keys, timeline_name
from posterr.redis_client import Change, EpochOf, Redis, current_generation, missed

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
BUILD_MARK_TTL = 30  # seconds a build may take before its mark expires
PUSH_BATCH = 100  # followers per push script call
# A build reads the newest BUILD_SIZE posts (40 pages of 10; Mastodon fills 400 too), and pushes grow
# it to `size`: a cold read costs half a full build (make bench's followed_by row reads cold ones).
# Pages past its end come from PostgreSQL, at a cost that grows with the follows.
BUILD_SIZE = 400

# KEYS: state, entries, followees. ARGV: start, count, a new build token, its TTL, the sentinel, the
# generation key (redis_client.py, mechanism 3; Redis.read adds it). A hit: {1, complete, merged,
# entries}; a miss marks the build (rule 4) in the same call: {0, the build's token}. A timeline with
# a key gone, or of another generation, is a miss (rule 7): what is left of it is deleted first.
_READ = current_generation("ARGV[6]", "ARGV[3]") + """if redis.call('HGET', KEYS[1], 'ready') == '1' then
  if redis.call('EXISTS', KEYS[2], KEYS[3]) == 2 and redis.call('HGET', KEYS[1], '~g') == generation then
    return {1, redis.call('HGET', KEYS[1], 'complete'), redis.call('HGET', KEYS[1], 'merged'),
            redis.call('ZRANGE', KEYS[2], ARGV[1], '(' .. ARGV[5], 'BYLEX', 'REV', 'LIMIT', 0, ARGV[2])}
  end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
end
""" + missed("ARGV[3]", "ARGV[4]")
# ARGV: token, ttl, complete, merged, number of entries, the sentinel, the entries, then the followees.
_STORE = """
if redis.call('HGET', KEYS[1], '~gen') ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'ready') == 1 then
  return 0
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZADD', KEYS[2], 0, ARGV[6])
redis.call('SADD', KEYS[3], ARGV[6])
local function add(command, key, first, last, scored)
  local batch = {}
  for i = first, last do
    if scored then batch[#batch + 1] = 0 end
    batch[#batch + 1] = ARGV[i]
    if #batch >= 1000 then redis.call(command, key, unpack(batch)); batch = {} end
  end
  if #batch > 0 then redis.call(command, key, unpack(batch)) end
end
local entries_end = 6 + tonumber(ARGV[5])
add('ZADD', KEYS[2], 7, entries_end, true)
add('SADD', KEYS[3], entries_end + 1, #ARGV, false)
redis.call('HSET', KEYS[1], 'ready', '1', 'complete', ARGV[3], 'merged', ARGV[4])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return 1
"""
# KEYS: state, entries and followees of each follower in turn; ARGV: author, member, size, the
# generation key of their master.
_PUSH = """
local generation = redis.call('GET', ARGV[4])  -- none (false): no timeline is current
local pushed = 0
for i = 1, #KEYS, 3 do
  local state, entries, followees = KEYS[i], KEYS[i + 1], KEYS[i + 2]
  if redis.call('HGET', state, 'ready') ~= '1' then
    redis.call('DEL', state)  -- a build under way may have read PostgreSQL before this post
  elseif redis.call('EXISTS', entries, followees) < 2 or redis.call('HGET', state, '~g') ~= generation then
    redis.call('DEL', state, entries, followees)  -- a part is gone, or another generation's (rule 7)
  elseif redis.call('SISMEMBER', followees, ARGV[1]) == 1 then
    redis.call('ZADD', entries, 0, ARGV[2])
    local excess = redis.call('ZCARD', entries) - 1 - tonumber(ARGV[3])
    if excess > 0 then
      redis.call('ZREMRANGEBYRANK', entries, 1, excess)  -- rank 0: the sentinel
      redis.call('HSET', state, 'complete', '0')
    end
    pushed = pushed + 1
  end
end
return pushed
"""
# Held by both sets of a stored timeline, so that each exists even when it has nothing else (an
# absent key is then a lost one): below every entry, and no user's id.
SENTINEL = "0"


def member(created_at: datetime, post_id: int) -> str:
    return f"{(created_at - _EPOCH) // _MICROSECOND:017d}:{post_id:019d}"


def post_id(entry: str) -> int:
    return int(entry[18:])


@dataclass(frozen=True)
class Slice:
    """Entries after a cursor (newest first), whether the timeline holds every post of its pushed
    followees, and the followees merged in at read time."""
    entries: list[str]
    complete: bool
    merged: list[int]


@dataclass(frozen=True)
class Build:
    user_id: int
    epoch: str
    token: str


class HomeTimelines:
    def __init__(self, redis_: Redis, *, size: int, ttl: int):
        self.redis = redis_
        self.size = size
        self.build_size = min(size, BUILD_SIZE)
        self.ttl = ttl
        self._read, self._store, self._push = (redis_.script(script) for script in (_READ, _STORE, _PUSH))

    def read(self, user_id: int, after: str | None, count: int) -> Slice | Build | None:
        """`count` entries after the member `after`; on a miss, a Build to fill it; None when Redis
        is unavailable (the caller reads PostgreSQL)."""
        epoch = self.redis.epoch_of(timeline_name(user_id))
        if epoch is None:
            return None
        keys = timeline_keys(user_id, epoch)
        args = [f"({after}" if after else "+", count, f"{random.getrandbits(64):016x}", BUILD_MARK_TTL, SENTINEL]
        reply = self.redis.read(self._read, keys, args)
        if reply is None or self.redis.epoch_of(timeline_name(user_id)) != epoch:
            return None
        if reply[0] == 0:
            return Build(user_id, epoch, reply[1].decode())
        _, complete, merged, entries = reply
        return Slice([e.decode() for e in entries], complete == b"1", _ids(merged))

    def store(self, build: Build, entries: list[str], followees: list[int], merged: list[int]) -> bool:
        """Keeps a built timeline (`entries`: the newest posts of the pushed followees, at most
        `build_size`) unless a push or a delete came since its mark."""
        complete = "1" if len(entries) < self.build_size else "0"
        args = [build.token, self.ttl, complete, ",".join(map(str, merged)), len(entries), SENTINEL, *entries,
                *followees]
        stored = self.redis.run(lambda _: self._store(keys=timeline_keys(build.user_id, build.epoch), args=args))
        return bool(stored)

    def pushes(self, follower_ids: list[int], author_id: int, entry: str) -> Change:
        """A new post for its author's followers' timelines, to deliver before the post is answered:
        one script call per PUSH_BATCH followers (a call per follower costs the app CPU per call, see
        docs/performance.md; a call for all of them would hold Redis for as long as a thousand
        timelines take). A batch holds
        several readers' keys: on a Redis Cluster only readers whose timelines share a slot."""
        def queue(pipe, epoch_of: EpochOf) -> None:
            for group in self.redis.same_slot(follower_ids, timeline_name):
                for first in range(0, len(group), PUSH_BATCH):
                    keys = [key for follower_id in group[first:first + PUSH_BATCH]
                            for key in timeline_keys(follower_id, epoch_of(timeline_name(follower_id)))]
                    generation_key = self.redis.generation_key(keys[0])
                    self._push(keys=keys, args=[author_id, entry, self.size, generation_key], client=pipe)

        return Change(queue, [f"timelines of {len(follower_ids)} followers"], self.drops(follower_ids).queue_commands)

    @staticmethod
    def drops(user_ids: list[int]) -> Change:
        """These readers' timelines (their followees changed), to delete before the change is answered."""
        def queue(pipe, epoch_of: EpochOf) -> None:
            for user_id in user_ids:
                pipe.delete(*timeline_keys(user_id, epoch_of(timeline_name(user_id))))

        return Change(queue, [f"timelines of {len(user_ids)} readers"])


def _ids(text: Any) -> list[int]:
    text = text.decode() if isinstance(text, bytes) else text or ""
    return [int(part) for part in text.split(",") if part]
