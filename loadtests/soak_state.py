"""What `make soak` knows while it runs: the writes the app acknowledged (the ledger), when faults
were active (the fault windows), and every invariant's checks and violations (the verdict).

Everything runs in one gevent process, so these are plain objects shared by the load's greenlets and
the fault schedule, without locks. Times are `time.monotonic()` seconds; reports show them relative
to the start of the run.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

# How long after a fault is healed the app may still answer 502/503/504 or drop connections: also the
# deadline for every instance to answer again (liveness).
RECOVERY_SECONDS = 10.0
# What each invariant means, in the order of the report.
INVARIANTS = {
    "liveness": "after each heal and at the end, /healthz and GET /api/posts answer 200 within 2 s on "
                "nginx and every instance, at most 10 s after the heal",
    "server errors": "never a 500; other 5xx and dropped connections only inside a fault window; no "
                     "request of the load left unanswered (timeout)",
    "problem+json": "every 4xx/5xx response is application/problem+json",
    "writes kept": "every 201 post and user and every acknowledged follow/unfollow is in PostgreSQL, "
                   "and every post and user reads back through the API",
    "read your writes": "acknowledged posts are in their author's Posts and Replies feed on nginx and "
                        "every instance (fresh connections), and so are those that are not replies in the "
                        "global feed's first page; acknowledged replies are among their parent's replies; "
                        "in the writer's own read right after the 201",
    "replies left out": "no feed read without include_replies (global, Following) shows a reply",
    "no post twice": "no page of a feed (global, Following, an author's) shows a post twice",
    "older posts linked": "a Following page has a Link when an acknowledged post of a followee is older "
                          "than its last entry",
    "daily limit": "at most 5 creations per user per UTC day; a 429 only when the user has made 5; each "
                   "user's post_quota total equals their posts; no Redis daily counter above PostgreSQL's count",
    "counters": "posts_count, followers_count, following_count, repost_count, quote_count and "
                "reply_count equal what the tables hold (and, at the end, what the API shows)",
    "revoked tokens": "a write sent with a token after its revocation was acknowledged (204), to nginx or any "
                      "instance, is never acknowledged (2xx), and no post it carried is in PostgreSQL; a "
                      "revocation whose outcome is unknown (503, no answer) is none",
    "live tokens": "a token its holder never revoked is never refused (401)",
}
MAX_DETAILS = 200  # violations kept per invariant (the count is always exact)


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def restart(self) -> None:
        self.started = time.monotonic()

    def since_start(self, moment: float | None = None) -> float:
        return (time.monotonic() if moment is None else moment) - self.started


@dataclass
class AckPost:
    id: int
    user_id: int
    type: str
    repost_id: int | None
    reply_to_id: int | None
    created_at: str  # as the API wrote it: RFC 3339 with microseconds, so it sorts as text
    acked_at: float

    @property
    def feed_key(self) -> tuple[str, int]:
        """The feed's order (newest first is the largest key)."""
        return self.created_at, self.id


@dataclass
class FollowPair:
    """One follower → followee pair, written only by the load user that owns the follower account.
    `following` is what the last acknowledged PUT/DELETE left (None: an answer was lost, so nobody
    knows); `version` changes whenever a request starts, so a check can tell the pair moved under it."""

    following: bool | None = False
    version: int = 0
    busy: bool = False


@dataclass
class RevokedWrite:
    """A write sent with a token after the 204 of its revocation, and what came back."""

    user_id: int
    token_id: int
    revoked_at: float  # when the revocation's 204 came
    sent_at: float
    what: str  # the method and URL
    status: int  # 0: no answer
    content: str | None = None  # the post's text, for a creation: unique, so PostgreSQL can be asked for it


@dataclass
class Ledger:
    """Every write the app acknowledged, and what the daily-limit check needs to know."""

    users: dict[int, float] = field(default_factory=dict)  # id → when the 201 came
    clients: dict[int, str] = field(default_factory=dict)  # id → the address its member sends as X-Forwarded-For
    user_ids: list[int] = field(default_factory=list)  # the same ids in order, for choices and samples
    posts: dict[int, AckPost] = field(default_factory=dict)
    post_ids: list[int] = field(default_factory=list)  # idem
    by_author: dict[int, list[AckPost]] = field(default_factory=lambda: defaultdict(list))
    follows: dict[tuple[int, int], FollowPair] = field(default_factory=dict)
    refusals: list[tuple[int, datetime, float]] = field(default_factory=list)  # (user id, UTC time, when) of 429s
    # Users with a creation whose answer was lost (502, 504, no answer): it may have been written, or
    # a killed worker may have kept its unit of the day's quota, so a later 429 proves nothing.
    uncertain_creators: set[int] = field(default_factory=set)
    revoked_writes: list[RevokedWrite] = field(default_factory=list)

    def add_user(self, user_id: int, client: str) -> None:
        self.users[user_id] = time.monotonic()
        self.clients[user_id] = client
        self.user_ids.append(user_id)

    def add_post(self, body: dict) -> AckPost:
        post = AckPost(body["id"], body["user_id"], body["type"], body.get("repost_id"), body.get("reply_to_id"),
                       body["created_at"], time.monotonic())
        self.posts[post.id] = post
        self.post_ids.append(post.id)
        self.by_author[post.user_id].append(post)
        return post

    def pair(self, follower: int, followee: int) -> FollowPair:
        return self.follows.setdefault((follower, followee), FollowPair())


@dataclass
class FaultWindow:
    label: str
    opened: float
    healed: float | None = None

    def covers(self, start: float, end: float) -> bool:
        """Whether a request running from start to end overlapped the fault or its recovery time."""
        closes = float("inf") if self.healed is None else self.healed + RECOVERY_SECONDS
        return start <= closes and end >= self.opened


class FaultWindows:
    def __init__(self) -> None:
        self.windows: list[FaultWindow] = []

    def open(self, label: str) -> FaultWindow:
        window = FaultWindow(label, time.monotonic())
        self.windows.append(window)
        return window

    def during(self, start: float, end: float | None = None) -> list[str]:
        """The faults a request (or a moment) overlapped."""
        end = start if end is None else end
        return [window.label for window in self.windows if window.covers(start, end)]


class Verdict:
    """Checks and violations by invariant, and every response by route and status."""

    def __init__(self, clock: Clock, windows: FaultWindows) -> None:
        self.clock = clock
        self.windows = windows
        self.checks: Counter[str] = Counter()
        self.violation_counts: Counter[str] = Counter()
        self.violations: dict[str, list[dict]] = defaultdict(list)
        self.routes: dict[str, Counter[int]] = defaultdict(Counter)

    def check(self, invariant: str, ok: bool, detail: str = "", *, count: int = 1) -> bool:
        """Count `count` checks of `invariant`; when not ok, one violation described by `detail`."""
        if invariant not in INVARIANTS:
            raise ValueError(f"{invariant!r} is not one of the soak's invariants (INVARIANTS)")
        self.checks[invariant] += count
        if not ok:
            self.violate(invariant, detail)
        return ok

    def violate(self, invariant: str, detail: str, moment: float | None = None) -> None:
        moment = time.monotonic() if moment is None else moment
        self.violation_counts[invariant] += 1
        if len(self.violations[invariant]) < MAX_DETAILS:
            self.violations[invariant].append({"t": round(self.clock.since_start(moment), 2),
                                               "during": self.windows.during(moment), "detail": detail})

    def response(self, route: str, status: int, content_type: str, started: float, ended: float, *,
                 timed_out: bool = False, must_answer: bool = True, what: str = "") -> None:
        """Record one HTTP exchange (status 0: no answer) and judge it: the server-error and
        problem+json invariants. `must_answer=False` for liveness probes, which judge a missing answer
        themselves (they retry until their deadline)."""
        self.routes[route][status] += 1
        faults = self.windows.during(started, ended)
        label = f"{route} {what}".strip()
        if status == 0:
            if must_answer:
                self.check("server errors", bool(faults) and not timed_out,
                           f"{label}: no answer in time (a hang)" if timed_out
                           else f"{label}: connection failed outside any fault window")
            return
        gateway_status = status in (502, 503, 504)  # what a fault may cause, inside its window
        self.check("server errors", status < 500 or (gateway_status and bool(faults)),
                   f"{label}: {status} {'outside any fault window' if gateway_status else '(never expected)'}")
        if status >= 400:
            self.check("problem+json", content_type.startswith("application/problem+json"),
                       f"{label}: {status} with Content-Type {content_type or '(none)'}")

    @property
    def total_violations(self) -> int:
        return sum(self.violation_counts.values())


@dataclass
class Shared:
    """What every load user reads and writes: the ledger, the verdict, and where to send requests."""

    ledger: Ledger
    verdict: Verdict
    bases: list[str]  # nginx, then each instance
