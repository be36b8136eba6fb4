"""The soak's load: Locust users (greenlets of the soak's own process) that sign up, log in, read and
write, each with an account and bearer tokens of its own (loadtests/soak_accounts.py).

Reads go through nginx over the user's keep-alive connection, and over fresh connections
(`Connection: close`) to nginx or straight to one instance, so that every gunicorn worker is
reached (a keep-alive connection only ever reaches one). Writes (sign-ups, posts, reposts, quotes,
replies, follows, unfollows) go through nginx with the user's token; every acknowledged one goes
into the ledger for the checks. A user whose account has used its 5 creations of the day gets 429s;
half the time it then signs up a fresh account, so writes keep flowing while some accounts stay at
their limit. Right after some 201s the writer reads its own "Posts and Replies" feed (fresh
connection, any instance) and must see the post.

Every request has a timeout (LOAD_TIMEOUT): a hang shows up as a violation, never as a stuck soak.
"""

from __future__ import annotations

import random
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import urljoin

import requests
from locust import between, task

from loadtests.soak_accounts import AccountHolder, answer_lost
from loadtests.soak_state import AckPost

OWN_READ_SHARE = 0.5  # of the 201s, how many the writer reads back at once
SWITCH_ACCOUNT_SHARE = 0.5  # of the 429s, how many make the user sign up a fresh account
NAMED_SHARE = 0.5  # of the creations, how many name their author in user_id (the token says it anyway)
SEEN_LIMIT = 100  # posts remembered per user (candidates for reposts, quotes and replies)
# A creation whose answer was lost (or 409: its first attempt still running) is sent again with its
# Idempotency-Key after these pauses, as a careful client does: a retry of one that committed gets
# its 201 replayed (make soak's kill-after-commit).
RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0)
MAX_PAGES = 10
WORDS = ["soak", "fault", "redis", "postgres", "nginx", "worker", "kill", "pause", "freeze", "crash", "hello",
         "world", "quokka", "zebra", "today"]


def sentence() -> str:
    return " ".join(random.choices(WORDS, k=random.randint(3, 10))).capitalize()


def next_page(response: requests.Response) -> str | None:
    link = response.links.get("next", {}).get("url")
    return urljoin(response.url, link) if link else None


class SoakMember(AccountHolder):
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        super().on_start()
        self.reposted: set[int] = set()
        self.seen: list[dict] = []
        self.sign_up()

    def sign_up(self) -> bool:
        signed_up = super().sign_up()
        if signed_up:
            self.reposted = set()
        return signed_up

    def remember(self, posts: list[dict]) -> None:
        self.seen.extend({"id": p["id"], "type": p["type"]} for p in posts)
        del self.seen[:-SEEN_LIMIT]

    def author(self) -> dict:
        """What a creation's body says of its author: sometimes its user_id, which must be the token's."""
        return {"user_id": self.account} if random.random() < NAMED_SHARE else {}

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
            self.call("GET", f"/api/posts?followed_by={self.account}", "GET /api/posts?followed_by (keep-alive)",
                      token=self.token)

    # --- creations ----------------------------------------------------------------------------------

    @task(4)
    def post(self) -> None:
        if self.has_account():
            self.create("/api/posts", {**self.author(), "content": sentence()}, "POST /api/posts (post)")

    @task(2)
    def repost(self) -> None:
        candidates = [p["id"] for p in self.seen if p["type"] != "repost" and p["id"] not in self.reposted]
        if self.has_account() and candidates:
            target = random.choice(candidates)
            self.reposted.add(target)  # tried once whatever the answer: a second try would be a 409
            self.create(f"/api/posts/{target}/repost", self.author(), "POST /api/posts/{id}/repost")

    @task(1)
    def quote(self) -> None:
        candidates = [p["id"] for p in self.seen if p["type"] != "quote"]
        if self.has_account() and candidates:
            body = {**self.author(), "content": sentence(), "repost_id": random.choice(candidates)}
            self.create("/api/posts", body, "POST /api/posts (quote)")

    @task(2)
    def reply(self) -> None:
        candidates = [p["id"] for p in self.seen if p["type"] != "repost"]
        if self.has_account() and candidates:
            body = {**self.author(), "content": sentence(), "reply_to_id": random.choice(candidates)}
            self.create("/api/posts", body, "POST /api/posts (reply)")

    def create(self, url: str, body: dict, route: str) -> None:
        key = secrets.token_hex(8)
        token = self.token
        response = self.call("POST", url, route, body=body, key=key, token=token)
        for pause in RETRY_PAUSES:
            if not (answer_lost(response.status_code) or response.status_code == 409 and "Idempotency-Key"
                    in response.text):
                break
            time.sleep(pause)  # gevent's: the other load users go on meanwhile
            response = self.call("POST", url, f"{route} (retry, same key)", body=body, key=key, token=token)
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
        if self.following and self.has_account():
            self.change_follow(random.choice(sorted(self.following)), "DELETE")

    def change_follow(self, target: int, method: str) -> None:
        """PUT or DELETE a follow; an answer lost in a fault is retried once, as a careful client
        does (both are idempotent), which must redo the cache work a worker killed after its commit
        left undone."""
        pair = self.shared.ledger.pair(self.account, target)
        pair.version += 1
        pair.busy = True
        for _ in range(2):
            response = self.call(method, f"/api/users/{self.account}/following/{target}",
                                 f"{method} /api/users/{{id}}/following/{{id}}", token=self.token)
            if not answer_lost(response.status_code):
                break
        pair.busy = False
        if response.status_code == 204:
            pair.following = method == "PUT"
            (self.following.add if pair.following else self.following.discard)(target)
        elif answer_lost(response.status_code):
            pair.following = None
            self.following.discard(target)
