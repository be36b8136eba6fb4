"""Who each simulated user of `make loadtest` is (for loadtests/locustfile.py; pure, no locust here):
a returning member, who acts as a seeded user with a token that loadtests/loadtest.py issued in bulk
(loadtests/bulk_tokens.py), or a newcomer, who signs up with a password and logs in for a token as
a new user of the API does.

Newcomers are a share of the users (`--newcomers`, 10 % by default), spread evenly over those
started, and each signs up at its first acting call rather than when it starts: a sign-up and a
login cost an Argon2 hash each (about 40 ms of CPU, by design), and every user doing both as the run
starts made its first seconds measure Argon2 rather than the mix (all 200 users: p95 2 s in a 20 s
run; 20 of them at their start: 57 to 100 ms, against 24 to 45 ms with none). Their logins never
fail, so the limit of 10 failed logins per client (all of Locust is one client) is never near."""

from __future__ import annotations

from pathlib import Path


def is_newcomer(number: int, percent: int) -> bool:
    """Whether the user started `number`th (0, 1, …) is a newcomer: of the first n users, n × percent
    / 100 rounded down are, one every 100 / percent users (exact integers: no float rounding)."""
    return (number + 1) * percent // 100 > number * percent // 100


def accounts_lines(user_ids: list[int], issued: list[str]) -> list[str]:
    """The accounts file loadtest.py hands to locust: `USER_ID TOKEN` a line."""
    return [f"{user_id} {token}" for user_id, token in zip(user_ids, issued, strict=True)]


def parse_accounts(text: str) -> list[tuple[int, str]]:
    """The (user id, token) pairs of an accounts file; a malformed line is an error that names its
    number, never its content (it may hold a token)."""
    accounts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        user_id, _, token = line.strip().partition(" ")
        if not user_id.isdigit() or not token or " " in token:
            raise ValueError(f"line {number} of the accounts file is not `USER_ID TOKEN`")
        accounts.append((int(user_id), token))
    return accounts


class Accounts:
    """The returning members' accounts, each handed to one user only, in the file's order."""

    def __init__(self, accounts: list[tuple[int, str]]):
        self._left = list(reversed(accounts))

    @classmethod
    def from_file(cls, path: str) -> Accounts:
        """An empty path (locust run by hand): no accounts, every user is a newcomer."""
        return cls(parse_accounts(Path(path).read_text(encoding="ascii")) if path else [])

    def take(self) -> tuple[int, str] | None:
        """The next account, or None once each has been handed out (the user is then a newcomer)."""
        return self._left.pop() if self._left else None
