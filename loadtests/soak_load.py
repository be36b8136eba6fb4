"""The soak's load: Locust users (greenlets of the soak's own process) that sign up, read and write.

Reads go through nginx over the user's keep-alive connection, and over fresh connections
(`Connection: close`) to nginx or straight to one instance, so that every gunicorn worker is
reached (a keep-alive connection only ever reaches one). Writes (sign-ups, posts, reposts, quotes,
replies, follows, unfollows) go through nginx; every acknowledged one goes into the ledger for the checks.
A user whose account has used its 5 creations of the day gets 429s; half the time it then signs up
a fresh account, so writes keep flowing while some accounts stay at their limit. Right after some
201s the writer reads its own "Posts and Replies" feed (fresh connection, any instance) and must see
the post.

Every request has a timeout (LOAD_TIMEOUT): a hang shows up as a violation, never as a stuck soak.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import urljoin

import requests
from locust import HttpUser, between, task

from loadtests.soak_state import AckPost, Ledger, Verdict

# Longer than anything the app may legitimately take: a PostgreSQL connection waited for (5 s) plus
# a statement (5 s), and nginx trying up to three instances within 10 s.
LOAD_TIMEOUT = 20.0
OWN_READ_SHARE = 0.5  # of the 201s, how many the writer reads back at once
SWITCH_ACCOUNT_SHARE = 0.5  # of the 429s, how many make the user sign up a fresh account
SEEN_LIMIT = 100  # posts remembered per user (candidates for reposts, quotes and replies)
# A creation whose answer was lost (or 409: its first attempt still running) is sent again with its
# Idempotency-Key after these pauses, as a careful client does: a retry of one that committed gets
# its 201 replayed (make soak's kill-after-commit).
RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0)
MAX_PAGES = 10
WORDS = ["soak", "fault", "redis", "postgres", "nginx", "worker", "kill", "pause", "freeze", "crash", "hello",
         "world", "quokka", "zebra", "today"]


@dataclass
class Shared:
    """What every load user reads and writes: the ledger, the verdict, and where to send requests."""

    ledger: Ledger
    verdict: Verdict
    bases: list[str]  # nginx, then each instance


def sentence() -> str:
    return " ".join(random.choices(WORDS, k=random.randint(3, 10))).capitalize()


def next_page(response: requests.Response) -> str | None:
    link = response.links.get("next", {}).get("url")
    return urljoin(response.url, link) if link else None


def answer_lost(status: int) -> bool:
    """No answer, or one from nginx or a fault (502/503/504): the request may or may not have been done."""
    return status == 0 or status >= 500


class SoakMember(HttpUser):
    wait_time = between(0.2, 1.0)
    shared: ClassVar[Shared]  # set by loadtests/soak.py before the runner starts

    def on_start(self) -> None:
        # Each member is a client of its own (the instances trust 127.0.0.1, nginx included, as a
        # proxy): read-your-writes is per client, and with read replicas that is what it promises.
        self.address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        self.account: int | None = None
        self.following: set[int] = set()
        self.reposted: set[int] = set()
        self.seen: list[dict] = []
        self.sign_up()

    # --- plumbing -----------------------------------------------------------------------------------

    def call(self, method: str, url: str, route: str, *, fresh: bool = False, body: dict | None = None,
             key: str | None = None):
        """One request, recorded and judged (server errors, problem+json) by the verdict. A relative
        URL goes to nginx over this user's keep-alive connection."""
        started = time.monotonic()
        headers = {"X-Forwarded-For": self.address, **({"Connection": "close"} if fresh else {}),
                   **({"Idempotency-Key": key} if key else {})}
        response = self.client.request(method, url, name=route, json=body, timeout=LOAD_TIMEOUT, headers=headers)
        self.shared.verdict.response(route, response.status_code, response.headers.get("Content-Type", ""),
                                     started, time.monotonic(), what=url,
                                     timed_out=isinstance(getattr(response, "error", None), requests.Timeout))
        return response

    def any_base(self) -> str:
        return random.choice(self.shared.bases)

    def any_user(self) -> int | None:
        return random.choice(self.shared.ledger.user_ids) if self.shared.ledger.user_ids else None

    def remember(self, posts: list[dict]) -> None:
        self.seen.extend({"id": p["id"], "type": p["type"]} for p in posts)
        del self.seen[:-SEEN_LIMIT]

    def sign_up(self) -> None:
        for _ in range(3):  # a 409 (the random name is taken) gets another name
            response = self.call("POST", "/api/users", "POST /api/users",
                                 body={"username": "s" + secrets.token_hex(6)})
            if response.status_code == 201:
                self.account = response.json()["id"]
                self.shared.ledger.add_user(self.account, self.address)
                self.following, self.reposted = set(), set()
                return
            if response.status_code != 409:
                return  # a fault: the next write task tries again

    # --- reads --------------------------------------------------------------------------------------

    @task(6)
    def scroll_feed(self) -> None:
        url: str | None = "/api/posts"
        for _ in range(random.randint(1, 3)):
            response = self.call("GET", url, "GET /api/posts (keep-alive)")
            if response.status_code != 200:
                return
            self.remember(response.json())
            if not (url := next_page(response)):
                return

    @task(4)
    def read_feed_fresh(self) -> None:
        response = self.call("GET", f"{self.any_base()}/api/posts", "GET /api/posts (fresh)", fresh=True)
        if response.status_code == 200:
            self.remember(response.json())

    @task(3)
    def read_author_feed(self) -> None:
        if (author := self.any_user()) is not None:
            self.call("GET", f"{self.any_base()}/api/posts?author_id={author}", "GET /api/posts?author_id (fresh)",
                      fresh=True)

    @task(3)
    def read_profile(self) -> None:
        if (user := self.any_user()) is not None:
            self.call("GET", f"/api/users/{user}", "GET /api/users/{id} (keep-alive)")

    @task(2)
    def read_post(self) -> None:
        if self.shared.ledger.post_ids:
            post_id = random.choice(self.shared.ledger.post_ids)
            self.call("GET", f"{self.any_base()}/api/posts/{post_id}", "GET /api/posts/{id} (fresh)", fresh=True)

    @task(2)
    def read_thread(self) -> None:
        """A post's conversation (its replies become candidates for replies of their own)."""
        if self.seen:
            post_id = random.choice(self.seen)["id"]
            response = self.call("GET", f"{self.any_base()}/api/posts/{post_id}/context",
                                 "GET /api/posts/{id}/context (fresh)", fresh=True)
            if response.status_code == 200:
                thread = response.json()
                self.remember(thread["ancestors"] + thread["descendants"])

    @task(1)
    def read_following_feed(self) -> None:
        if self.account is not None:
            self.call("GET", f"/api/posts?followed_by={self.account}", "GET /api/posts?followed_by (keep-alive)")

    # --- creations ----------------------------------------------------------------------------------

    @task(4)
    def post(self) -> None:
        if self.has_account():
            self.create("/api/posts", {"user_id": self.account, "content": sentence()}, "POST /api/posts (post)")

    @task(2)
    def repost(self) -> None:
        candidates = [p["id"] for p in self.seen if p["type"] != "repost" and p["id"] not in self.reposted]
        if self.has_account() and candidates:
            target = random.choice(candidates)
            self.reposted.add(target)  # tried once whatever the answer: a second try would be a 409
            self.create(f"/api/posts/{target}/repost", {"user_id": self.account}, "POST /api/posts/{id}/repost")

    @task(1)
    def quote(self) -> None:
        candidates = [p["id"] for p in self.seen if p["type"] != "quote"]
        if self.has_account() and candidates:
            body = {"user_id": self.account, "content": sentence(), "repost_id": random.choice(candidates)}
            self.create("/api/posts", body, "POST /api/posts (quote)")

    @task(2)
    def reply(self) -> None:
        candidates = [p["id"] for p in self.seen if p["type"] != "repost"]
        if self.has_account() and candidates:
            body = {"user_id": self.account, "content": sentence(), "reply_to_id": random.choice(candidates)}
            self.create("/api/posts", body, "POST /api/posts (reply)")

    def has_account(self) -> bool:
        if self.account is None:
            self.sign_up()
        return self.account is not None

    def create(self, url: str, body: dict, route: str) -> None:
        key = secrets.token_hex(8)
        response = self.call("POST", url, route, body=body, key=key)
        for pause in RETRY_PAUSES:
            if not (answer_lost(response.status_code) or response.status_code == 409 and "Idempotency-Key"
                    in response.text):
                break
            time.sleep(pause)  # gevent's: the other load users go on meanwhile
            response = self.call("POST", url, f"{route} (retry, same key)", body=body, key=key)
            if response.headers.get("Idempotent-Replayed"):  # counted apart: the first attempt had committed
                self.shared.verdict.routes[f"{route} (the retry's 201 replayed)"][response.status_code] += 1
        ledger = self.shared.ledger
        if response.status_code == 201:
            post = ledger.add_post(response.json())
            if random.random() < OWN_READ_SHARE:
                self.read_own_post(post)
        elif response.status_code == 429:
            ledger.refusals.append((self.account, datetime.now(UTC), time.monotonic()))
            if random.random() < SWITCH_ACCOUNT_SHARE:
                self.sign_up()
        elif answer_lost(response.status_code):
            ledger.uncertain_creators.add(self.account)

    def read_own_post(self, post: AckPost) -> None:
        """Read-your-writes at once: the author's Posts and Replies feed, over a fresh connection to
        nginx or any instance, must hold the post its 201 just acknowledged."""
        base = self.any_base()
        url: str | None = f"{base}/api/posts?author_id={post.user_id}&include_replies=true&limit=100"
        for _ in range(MAX_PAGES):
            response = self.call("GET", url, "GET /api/posts?author_id (own, fresh)", fresh=True)
            if response.status_code != 200:
                return  # judged as a response; it says nothing about the post
            if any(p["id"] == post.id for p in response.json()):
                self.shared.verdict.check("read your writes", True)
                return
            if not (url := next_page(response)):
                break
        self.shared.verdict.check("read your writes", False, f"{post.type} {post.id} of user {post.user_id} missing "
                                                             f"from its author's feed on {base} right after its 201")

    # --- follows ------------------------------------------------------------------------------------

    @task(2)
    def follow(self) -> None:
        target = self.any_user()
        if not self.has_account() or target in (None, self.account):
            return
        if self.shared.ledger.pair(self.account, target).following is False:  # None: outcome unknown, left alone
            self.change_follow(target, "PUT")

    @task(1)
    def unfollow(self) -> None:
        if self.account is not None and self.following:
            self.change_follow(random.choice(sorted(self.following)), "DELETE")

    def change_follow(self, target: int, method: str) -> None:
        pair = self.shared.ledger.pair(self.account, target)
        pair.version += 1
        pair.busy = True
        response = self.call(method, f"/api/users/{self.account}/following/{target}",
                             f"{method} /api/users/{{id}}/following/{{id}}")
        pair.busy = False
        if response.status_code == 204:
            pair.following = method == "PUT"
            (self.following.add if pair.following else self.following.discard)(target)
        elif answer_lost(response.status_code):
            pair.following = None
            self.following.discard(target)
