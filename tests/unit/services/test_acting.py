"""posterr/services/acting.py: who a write acts for, as a table of callers, modes and named users."""

from __future__ import annotations

import pytest

from posterr.errors import Forbidden, InsufficientScope, InvalidToken, Unauthorized, ValidationFailed
from posterr.services.acting import (
    ANONYMOUS,
    Actor,
    Caller,
    acting_user,
    check_still_writes,
    token_holder,
    validated_after_token,
)

WRITER = Caller(user_id=7, token_id=1, token_digest=b"d" * 32, scopes=frozenset({"read", "write"}))
READER = Caller(user_id=7, token_id=2, token_digest=b"r" * 32, scopes=frozenset({"read"}))


@pytest.mark.parametrize("caller, named, legacy, expected", [
    (WRITER, None, False, Actor(7, b"d" * 32)),
    (WRITER, 7, False, Actor(7, b"d" * 32)),
    (WRITER, None, True, Actor(7, b"d" * 32)),  # legacy mode checks a token that is sent, as required does
    (ANONYMOUS, 9, True, Actor(9)),
])
def test_who_acts(caller, named, legacy, expected):
    assert acting_user(caller, named, legacy=legacy) == expected


@pytest.mark.parametrize("caller, named, legacy, error", [
    (ANONYMOUS, 9, False, Unauthorized), (ANONYMOUS, None, False, Unauthorized),
    (ANONYMOUS, None, True, ValidationFailed), (ANONYMOUS, "9", True, ValidationFailed), (ANONYMOUS, 0, True, ValidationFailed),
    (WRITER, 8, False, Forbidden), (WRITER, 8, True, Forbidden), (WRITER, "7", False, ValidationFailed),
    (WRITER, True, False, ValidationFailed), (READER, None, False, InsufficientScope), (READER, 8, False, InsufficientScope),
])
def test_who_may_not_act(caller, named, legacy, error):
    with pytest.raises(error):
        acting_user(caller, named, legacy=legacy)


def test_a_token_holder_needs_a_token_and_the_scope_asked_for():
    assert token_holder(READER) == 7 and token_holder(WRITER, "write") == 7
    with pytest.raises(Unauthorized):
        token_holder(ANONYMOUS)
    with pytest.raises(InsufficientScope):
        token_holder(READER, "write")


def test_the_rate_limit_counts_a_token_against_its_user_and_nobody_against_the_address():
    assert WRITER.rate_limit_client("203.0.113.9") == "user:7"
    assert ANONYMOUS.rate_limit_client("203.0.113.9") == "203.0.113.9"


class Primary:
    """A DataTier's read_primary, over the run function given."""

    def __init__(self, run):
        self.run = run

    def read_primary(self, work):
        return work(self.run)


def test_a_refused_write_checks_its_token_first_so_401_comes_before_422():
    asked = []

    def run(name, **params):
        asked.append(name)
        return {"live": False}

    def invalid():
        raise ValidationFailed.of("content", "must not be empty")

    assert validated_after_token(Primary(run), Actor(7, b"d" * 32), lambda: "fine") == "fine"
    assert asked == []  # a valid request pays nothing here: its transaction checks the token
    with pytest.raises(InvalidToken):
        validated_after_token(Primary(run), Actor(7, b"d" * 32), invalid)
    with pytest.raises(ValidationFailed):
        validated_after_token(Primary(run), Actor(7), invalid)  # legacy, no token: as before
    assert asked == ["write_token_is_live"]


def test_a_write_checks_its_token_again_only_when_it_has_one():
    asked = []

    def run(name, **params):
        asked.append((name, params))
        return {"live": params["digest"] == b"d" * 32}

    check_still_writes(run, Actor(9))
    assert asked == []
    check_still_writes(run, Actor(7, b"d" * 32))
    with pytest.raises(InvalidToken):
        check_still_writes(run, Actor(7, b"x" * 32))
    assert [params["user_id"] for _, params in asked] == [7, 7]
