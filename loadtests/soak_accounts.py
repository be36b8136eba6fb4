"""The soak's load users as holders of accounts and bearer tokens (contract v2.0; the soak's apps run
with POSTERR_AUTH=required).

Every request goes through `AccountHolder.call`, which sends a token when given one and judges the
answer (loadtests/soak_state.py's Verdict). A member signs up with a password of its own and logs in
for a token, which it sends on every call that acts for its account. A login is 503 while Redis
cannot count failed logins, and any fault may lose an answer: a member without a token logs in again
at its next write, which is no violation.

Now and then a member logs in for a second token, revokes one of its two tokens with the other, and,
once the revocation is acknowledged (204), sends a write with the revoked one to nginx or to any
instance, right after reads with it there (so that the workers' half-second caches still say it is
live, and only the write's own check can refuse it). Each such write goes into the ledger, whatever
its answer, for the "revoked tokens" invariant (loadtests/soak_rules.py). A revocation whose outcome
is unknown (503, no answer) counts as none; the member stops using that token either way.

Tokens and passwords are kept in memory only: no log line, request name or report holds one.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from typing import ClassVar

import requests
from locust import HttpUser, task

from loadtests import soak_rules as rules
from loadtests.soak_state import RevokedWrite, Shared

# Longer than anything the app may legitimately take: a PostgreSQL connection waited for (5 s) plus
# a statement (5 s), and nginx trying up to three instances within 10 s.
LOAD_TIMEOUT = 20.0
PASSWORD_BYTES = 18  # 24 characters: the contract wants 12 to 1024
WARM_READS = 2  # reads with a token about to be revoked, on the base its write goes to
REVOKED_WRITES = ("post", "follow", "unfollow", "revoke")


def answer_lost(status: int) -> bool:
    """No answer, or one from nginx or a fault (502/503/504): the request may or may not have been done."""
    return status == 0 or status >= 500


@dataclass(frozen=True)
class Token:
    id: int
    secret: str = field(repr=False)  # sent in the Authorization header only

    @property
    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


class AccountHolder(HttpUser):
    abstract = True
    shared: ClassVar[Shared]  # set by loadtests/soak.py before the runner starts

    def on_start(self) -> None:
        # Each member is a client of its own (the instances trust 127.0.0.1, nginx included, as a
        # proxy): read-your-writes is per client, and with read replicas that is what it promises.
        self.address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        self.account: int | None = None
        self.username = self.password = ""
        self.token: Token | None = None
        self.following: set[int] = set()

    # --- plumbing -----------------------------------------------------------------------------------

    def call(self, method: str, url: str, route: str, *, fresh: bool = False, body: dict | None = None,
             key: str | None = None, token: Token | None = None, revoked: bool = False):
        """One request, recorded and judged (server errors, problem+json) by the verdict; with a token
        not `revoked`, also judged by "live tokens" (and dropped if refused). A relative URL goes to
        nginx over this user's keep-alive connection."""
        started = time.monotonic()
        headers = {"X-Forwarded-For": self.address, **({"Connection": "close"} if fresh else {}),
                   **({"Idempotency-Key": key} if key else {}), **(token.header if token else {})}
        response = self.client.request(method, url, name=route, json=body, timeout=LOAD_TIMEOUT, headers=headers)
        status = response.status_code
        self.shared.verdict.response(route, status, response.headers.get("Content-Type", ""), started,
                                     time.monotonic(), what=url,
                                     timed_out=isinstance(getattr(response, "error", None), requests.Timeout))
        if token is not None and not revoked and not answer_lost(status):
            rules.live_token_answer(self.shared.verdict, self.account, token.id, f"{method} {url}", status)
            if status == 401 and token == self.token:
                self.token = None  # the next write logs in again
        return response

    def any_base(self) -> str:
        return random.choice(self.shared.bases)

    def any_user(self) -> int | None:
        return random.choice(self.shared.ledger.user_ids) if self.shared.ledger.user_ids else None

    # --- accounts and tokens ------------------------------------------------------------------------

    def sign_up(self) -> bool:
        """A new account, with a password of its own, and a token for it (False: a fault got in the way
        of the account; its token may still be missing after a True)."""
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        for _ in range(3):  # a 409 (the random name is taken) gets another name
            username = "s" + secrets.token_hex(6)
            response = self.call("POST", "/api/users", "POST /api/users",
                                 body={"username": username, "password": password})
            if response.status_code == 201:
                self.account, self.username, self.password = response.json()["id"], username, password
                self.shared.ledger.add_user(self.account, self.address)
                self.following = set()
                self.token = self.log_in("soak")
                return True
            if response.status_code != 409:
                return False  # a fault: the next write task tries again
        return False

    def log_in(self, name: str) -> Token | None:
        """A new token of the member's account (scopes read and write), or None when a fault refused
        the login or lost its answer."""
        response = self.call("POST", "/api/tokens", "POST /api/tokens",
                             body={"username": self.username, "password": self.password, "name": name})
        if response.status_code == 201:
            issued = response.json()
            return Token(issued["id"], issued["token"])
        if response.status_code == 401:  # the account's 201 came with this very password
            self.shared.verdict.violate("writes kept", f"user {self.account} (201) cannot log in with its "
                                                       "password: 401")
        if response.status_code in (401, 429):
            self.account = None  # given up: the next write task signs up a fresh account
        return None

    def has_account(self) -> bool:
        """Whether the member can act: an account and a live token of it, made now if need be."""
        if self.account is None:
            self.sign_up()
        elif self.token is None:
            self.token = self.log_in("soak")
        return self.account is not None and self.token is not None

    # --- the revoked-token invariant ----------------------------------------------------------------

    @task(1)
    def revoke_a_token(self) -> None:
        """A second token, then one of the two revoked with the other, which the member keeps using;
        once the revocation is acknowledged, a write with the revoked one (write_revoked)."""
        if not self.has_account() or (spare := self.log_in("soak spare")) is None:
            return
        doomed, self.token = (spare, self.token) if random.random() < 0.5 else (self.token, spare)
        target = self.any_base()
        for _ in range(WARM_READS):  # fresh connections: likely both workers of an instance
            self.call("GET", f"{target}/api/tokens", "GET /api/tokens (fresh)", fresh=True, token=doomed)
        response = self.call("DELETE", f"{self.any_base()}/api/tokens/{doomed.id}", "DELETE /api/tokens/{id}",
                             fresh=True, token=self.token)
        if response.status_code == 204:
            self.write_revoked(doomed, target, revoked_at=time.monotonic())

    def write_revoked(self, doomed: Token, target: str, revoked_at: float) -> None:
        """One write with the revoked token on `target`, into the ledger whatever its answer: a post, a
        follow or an unfollow (a change of a follow pair as any other: the "writes kept" checks look
        at it too), or revoking the member's other token."""
        kind = random.choice(REVOKED_WRITES)
        followee = self.followee_for(kind)
        if kind in ("follow", "unfollow") and followee is None:
            kind = "post"
        content = f"Revoked {secrets.token_hex(8)}" if kind == "post" else None
        following = f"/api/users/{self.account}/following/{followee}"
        method, path, route = {"post": ("POST", "/api/posts", "POST /api/posts"),
                               "follow": ("PUT", following, "PUT /api/users/{id}/following/{id}"),
                               "unfollow": ("DELETE", following, "DELETE /api/users/{id}/following/{id}"),
                               "revoke": ("DELETE", f"/api/tokens/{self.token.id}", "DELETE /api/tokens/{id}")}[kind]
        pair = self.shared.ledger.pair(self.account, followee) if followee is not None else None
        if pair is not None:
            pair.version += 1
            pair.busy = True
        sent_at = time.monotonic()
        response = self.call(method, target + path, f"{route} (revoked token)", fresh=True, token=doomed,
                             revoked=True, body={"content": content} if content else None,
                             key=secrets.token_hex(8) if content else None)
        done = 200 <= response.status_code < 300  # a violation, which the member's state follows all the same
        self.shared.ledger.revoked_writes.append(RevokedWrite(
            self.account, doomed.id, revoked_at, sent_at, f"{method} {target}{path}", response.status_code, content))
        if pair is not None:
            pair.busy = False
            if done:
                pair.following = kind == "follow"
                (self.following.add if pair.following else self.following.discard)(followee)
        if kind == "revoke" and done:
            self.token = None

    def followee_for(self, kind: str) -> int | None:
        """For a follow or an unfollow, a user whose pair with the member is in a known state that no
        request is changing (None: there is none at hand)."""
        if kind == "follow":
            candidate = self.any_user()
        elif kind == "unfollow" and self.following:
            candidate = random.choice(sorted(self.following))
        else:
            return None
        if candidate is None or candidate == self.account:
            return None
        pair = self.shared.ledger.pair(self.account, candidate)
        return candidate if not pair.busy and pair.following is not None else None
