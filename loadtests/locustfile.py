"""A realistic mix for locust: every simulated user scrolls the feed by its Link headers, opens
profiles (and their "Posts and Replies"), follows and unfollows, posts, reposts, quotes, replies,
opens threads and searches, acting with a bearer token of its own: a returning member with a seeded
account's, issued in bulk by loadtests/loadtest.py; a newcomer (loadtests/members.py says which)
browses without one until it first wants to act, then signs up with a password and logs in. Every
call that acts for the user sends its token (contract v2.0, the app in POSTERR_AUTH=required mode)
and names no user_id; reads send none, as they need none.

Run it with `make loadtest` (loadtests/loadtest.py starts the app and passes the settings below), or
by hand: `locust -f loadtests/locustfile.py --host http://127.0.0.1:5000`.

Environment:
- LOADTEST_USER_LOW / LOADTEST_USER_HIGH: the id range of existing (seeded) users to visit and
  follow (default 1–1000);
- LOADTEST_ACCOUNTS_FILE: the returning members' accounts, `USER_ID TOKEN` a line (none: every user
  is a newcomer), each used by one simulated user; users beyond them are newcomers;
- LOADTEST_NEWCOMERS: the percentage of users who are newcomers whatever the accounts (default 10);
- LOADTEST_P95_MS: the run fails (exit code 1) when the p95 of all requests exceeds it (default 50);
- LOADTEST_MAX_FAIL_RATIO: ... or when more than this share of requests fail (default 0.01);
- LOADTEST_WAIT_MIN / LOADTEST_WAIT_MAX: seconds each user pauses between actions (default 0.5–2).

A 429 on a creation is the daily limit doing its job (each user makes more than its 5 creations in
a long run): it counts as a success. Every other status that is not the one expected is a failure.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import secrets

from locust import HttpUser, between, events, task

from loadtests.members import Accounts, is_newcomer

log = logging.getLogger("posterr.loadtest")

USER_LOW = int(os.environ.get("LOADTEST_USER_LOW", "1"))
USER_HIGH = int(os.environ.get("LOADTEST_USER_HIGH", "1000"))
P95_LIMIT_MS = float(os.environ.get("LOADTEST_P95_MS", "50"))
MAX_FAIL_RATIO = float(os.environ.get("LOADTEST_MAX_FAIL_RATIO", "0.01"))
WAIT_MIN = float(os.environ.get("LOADTEST_WAIT_MIN", "0.5"))
WAIT_MAX = float(os.environ.get("LOADTEST_WAIT_MAX", "2.0"))
KEYWORDS = ["#996", "#501", "axolotl", "zebra", "picture", "kitten", "the", "an", "mother", "water"]
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "posterr", "kitten", "zebra", "quokka",
         "hello", "world", "today"]
SEEN_LIMIT = 200  # posts remembered per user (candidates for reposts, quotes and replies)
NEWCOMERS_PERCENT = int(os.environ.get("LOADTEST_NEWCOMERS", "10"))
ACCOUNTS = Accounts.from_file(os.environ.get("LOADTEST_ACCOUNTS_FILE", ""))
STARTED = itertools.count()  # users numbered as they start (one process: locust's users are greenlets)


def problem(response) -> str:
    """What went wrong, for locust's failure table: the status and body, or the connection error."""
    if response.status_code == 0 or response.error and not response.text:
        return f"no answer: {type(response.error).__name__}: {response.error}"[:300]
    return f"{response.status_code}: {response.text[:200]}"


def sentence() -> str:
    return " ".join(random.choices(WORDS, k=random.randint(3, 12))).capitalize()


class Member(HttpUser):
    """One person using Posterr, with a token of their own: reading much more than writing."""

    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        self.user_id: int | None = None  # None until the user has a token: it then acts for nobody
        self.auth: dict[str, str] = {}  # the Authorization header of every acting call
        self.following: set[int] = set()
        self.reposted: set[int] = set()
        self.seen: list[dict] = []  # {id, type} of posts shown to this user
        account = None if is_newcomer(next(STARTED), NEWCOMERS_PERCENT) else ACCOUNTS.take()
        self.returning = account is not None  # a seeded user, with posts and reposts from before the run
        self.signed_up = False  # a newcomer tried to, at its first acting call
        if account:
            self._act_as(*account)

    def _act_as(self, user_id: int, token: str) -> None:
        self.user_id, self.auth = user_id, {"Authorization": f"Bearer {token}"}

    def _acts(self) -> bool:
        """Whether the user can act. A newcomer browses without an account until it first wants to
        act, and signs up and logs in then: so the newcomers' Argon2 hashes spread over the run
        instead of piling onto its start, where every user starts at once."""
        if self.user_id is None and not self.returning and not self.signed_up:
            self.signed_up = True
            user_id, token = self._sign_up_and_log_in()
            if token:
                self._act_as(user_id, token)
        return self.user_id is not None

    def _sign_up_and_log_in(self) -> tuple[int | None, str | None]:
        """A new account with a password, and a token for it (never shown: failures show the answer's
        problem, which holds neither)."""
        password = secrets.token_urlsafe(18)
        for _ in range(3):  # a 409 (the random name is taken) gets another name
            username = "lt" + secrets.token_hex(6)
            with self.client.post("/api/users", json={"username": username, "password": password},
                                  name="/api/users [sign up]", catch_response=True) as response:
                if response.status_code == 201:
                    user_id = response.json()["id"]
                    break
                if response.status_code != 409:
                    response.failure("sign-up: " + problem(response))
                    return None, None
                response.success()
        else:
            return None, None
        with self.client.post("/api/tokens", json={"username": username, "password": password, "name": "loadtest"},
                              name="/api/tokens [log in]", catch_response=True) as response:
            if response.status_code != 201:
                response.failure("log-in: " + problem(response))
                return None, None
            return user_id, response.json()["token"]

    # --- reading ------------------------------------------------------------------------------------

    def _read_pages(self, url: str, name: str, pages: int) -> None:
        """GET a list and follow its Link rel=next up to `pages` pages in all."""
        for page in range(pages):
            label = name if page == 0 else f"{name} [next page]"
            with self.client.get(url, name=label, catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(problem(response))
                    return
                self._remember(response.json())
                following = response.links.get("next")
                if not following:
                    return
                url = following["url"]

    def _remember(self, posts: list[dict]) -> None:
        self.seen.extend({"id": p["id"], "type": p["type"], "user_id": p["user_id"]} for p in posts)
        del self.seen[:-SEEN_LIMIT]

    @task(10)
    def scroll_feed(self) -> None:
        self._read_pages("/api/posts", "/api/posts", random.randint(1, 5))

    @task(2)
    def scroll_trending(self) -> None:
        self._read_pages("/api/posts?sort_by=trending", "/api/posts?sort_by=trending", random.randint(1, 3))

    @task(3)
    def following_feed(self) -> None:
        if self.user_id is None:
            return
        self._read_pages(f"/api/posts?followed_by={self.user_id}", "/api/posts?followed_by=[me]",
                         random.randint(1, 3))

    @task(5)
    def open_profile(self) -> None:
        if self.seen and random.random() < 0.5:
            target = random.choice(self.seen)["user_id"]
        else:
            target = random.randint(USER_LOW, USER_HIGH)
        viewer = f"?viewer_id={self.user_id}" if self.user_id else ""
        with self.client.get(f"/api/users/{target}{viewer}", name="/api/users/[id]",
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(problem(response))
                return
        if random.random() < 0.3:
            self._read_pages(f"/api/posts?author_id={target}&include_replies=true",
                             "/api/posts?author_id=[id]&include_replies=true", random.randint(1, 2))
        else:
            self._read_pages(f"/api/posts?author_id={target}", "/api/posts?author_id=[id]", random.randint(1, 2))

    @task(3)
    def open_thread(self) -> None:
        """A post's conversation, and sometimes the first pages of its direct replies."""
        if not self.seen:
            return
        target = random.choice(self.seen)["id"]
        with self.client.get(f"/api/posts/{target}/context", name="/api/posts/[id]/context",
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(problem(response))
                return
            thread = response.json()
            self._remember(thread["ancestors"] + thread["descendants"])
        if random.random() < 0.3:
            self._read_pages(f"/api/posts/{target}/replies", "/api/posts/[id]/replies", random.randint(1, 2))

    @task(3)
    def search(self) -> None:
        keyword = random.choice(KEYWORDS)
        with self.client.get("/api/posts/search", params={"keyword": keyword}, name="/api/posts/search",
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(problem(response))
                return
            self._remember(response.json())

    # --- writing ------------------------------------------------------------------------------------

    @task(2)
    def follow_or_unfollow(self) -> None:
        if not self._acts():
            return
        if self.following and random.random() < 0.3:
            target, method = random.choice(sorted(self.following)), "DELETE"
        else:
            target, method = random.randint(USER_LOW, USER_HIGH), "PUT"
            if target == self.user_id:  # a returning member is one of the seeded users: not themselves (422)
                return
        with self.client.request(method, f"/api/users/{self.user_id}/following/{target}", headers=self.auth,
                                 name="/api/users/[me]/following/[id]", catch_response=True) as response:
            if response.status_code != 204:
                response.failure(problem(response))
                return
        (self.following.add if method == "PUT" else self.following.discard)(target)

    def _create(self, path: str, body: dict, name: str, also_expected: int | None = None) -> None:
        """A creation: 201, or 429 once the daily limit is used up (expected, so a success), or the
        status `also_expected` names."""
        with self.client.post(path, json=body, headers=self.auth, name=name, catch_response=True) as response:
            if response.status_code == 429 and response.headers.get("Retry-After") or \
                    response.status_code == also_expected:
                response.success()
            elif response.status_code != 201:
                response.failure(problem(response))

    @task(2)
    def post(self) -> None:
        if self._acts():
            self._create("/api/posts", {"content": sentence()}, "/api/posts [post]")

    @task(1)
    def repost(self) -> None:
        candidates = [p for p in self.seen if p["type"] != "repost" and p["id"] not in self.reposted]
        if not candidates or not self._acts():
            return
        target = random.choice(candidates)["id"]
        self.reposted.add(target)  # tried once, whatever the answer: a second try would be a 409
        # A returning member may have reposted it before the run: then 409, as it should.
        self._create(f"/api/posts/{target}/repost", {}, "/api/posts/[id]/repost",
                     also_expected=409 if self.returning else None)

    @task(1)
    def quote(self) -> None:
        candidates = [p for p in self.seen if p["type"] != "quote"]
        if not candidates or not self._acts():
            return
        body = {"content": sentence(), "repost_id": random.choice(candidates)["id"]}
        self._create("/api/posts", body, "/api/posts [quote]")

    @task(2)
    def reply(self) -> None:
        candidates = [p for p in self.seen if p["type"] != "repost"]
        if not candidates or not self._acts():
            return
        target = random.choice(candidates)["id"]
        if random.random() < 0.5:
            self._create(f"/api/posts/{target}/replies", {"content": sentence()}, "/api/posts/[id]/replies [reply]")
        else:
            self._create("/api/posts", {"content": sentence(), "reply_to_id": target}, "/api/posts [reply]")


@events.quitting.add_listener
def verdict(environment, **_kwargs) -> None:
    """Exit code 1 when more than MAX_FAIL_RATIO of the requests failed or p95 is over the limit."""
    total = environment.stats.total
    p95 = total.get_response_time_percentile(0.95) or 0
    problems = []
    if total.num_requests == 0:
        problems.append("no request was made")
    if total.fail_ratio > MAX_FAIL_RATIO:
        problems.append(f"{total.fail_ratio:.2%} of requests failed (limit {MAX_FAIL_RATIO:.2%})")
    if p95 > P95_LIMIT_MS:
        problems.append(f"p95 is {p95:.0f} ms (limit {P95_LIMIT_MS:.0f} ms)")
    summary = (f"{total.num_requests} requests, {total.num_failures} failed ({total.fail_ratio:.2%}), "
               f"{total.total_rps:.0f} req/s, p50 {total.get_response_time_percentile(0.5) or 0:.0f} ms, "
               f"p95 {p95:.0f} ms, p99 {total.get_response_time_percentile(0.99) or 0:.0f} ms")
    if problems:
        log.error("loadtest FAILED: %s — %s", "; ".join(problems), summary)
        environment.process_exit_code = 1
    else:
        log.info("loadtest passed: %s", summary)
        environment.process_exit_code = 0
