"""Who a request acts for (pure): the caller the HTTP edge found from its bearer token, and the user
that a creation or a follow acts for, checked against what the request names (contract v2.0)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from posterr import validation
from posterr.errors import Forbidden, InsufficientScope, InvalidToken, Unauthorized, ValidationFailed

READ, WRITE = "read", "write"
T = TypeVar("T")
SCOPES = (READ, WRITE)


@dataclass(frozen=True)
class Caller:
    """The holder of the request's live token, or nobody (`ANONYMOUS`: no Authorization header)."""
    user_id: int | None = None
    token_id: int | None = None
    token_digest: bytes | None = None  # kept in memory only, to check the token again inside a write
    scopes: frozenset[str] = frozenset()

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    def rate_limit_client(self, address: str) -> str:
        """Whom the per-client rate limit counts the request against: the token's user, else the address."""
        return f"user:{self.user_id}" if self.authenticated else address


ANONYMOUS = Caller()


@dataclass(frozen=True)
class Actor:
    """The user a write acts for, and the digest of the token it acts with (None: a legacy request
    without one), which the write checks again inside its own transaction (`check_still_writes`)."""
    user_id: int
    token_digest: bytes | None = None


def acting_user(caller: Caller, named: Any, *, legacy: bool, field: str = "user_id") -> Actor:
    """Who a write acts for. With a token: its user, if it has the write scope and the request names
    nobody else (403). Without one: in legacy mode the user the request names (`named`, a body's
    user_id or a path's id, validated as ids are), else 401."""
    if not caller.authenticated:
        if not legacy:
            raise Unauthorized("this call acts for a user: send that user's token as Authorization: Bearer")
        return Actor(validation.body_id(field, named))
    require_scope(caller, WRITE)
    if named is not None:
        if validation.is_id(named) and named != caller.user_id:
            raise Forbidden(f"the token acts for user {caller.user_id}, not for user {named}")
        validation.body_id(field, named)
    return Actor(caller.user_id, caller.token_digest)


def validated_after_token(db: Any, actor: Actor, validate: Callable[[], T]) -> T:
    """validate()'s result. When it refuses (422) a write whose token the edge knew from an older
    lookup (posterr/recent_tokens.py), the token is checked first, on `db`'s primary: the contract
    puts 401 before 422, and only an invalid request pays for the check."""
    try:
        return validate()
    except ValidationFailed:
        if actor.token_digest is not None:
            db.read_primary(lambda run: check_still_writes(run, actor))
        raise


def check_still_writes(run: Callable[..., Any], actor: Actor) -> None:
    """Inside a write's transaction: its token (if any) still writes for its user, so that a token
    revoked before the write began is never acknowledged, whatever a worker has cached (401)."""
    if actor.token_digest is not None and not run("write_token_is_live", digest=actor.token_digest,
                                                  user_id=actor.user_id)["live"]:
        raise InvalidToken()


def token_holder(caller: Caller, scope: str | None = None) -> int:
    """The user whose token the request carries (401 without one), which has `scope` if one is named."""
    if not caller.authenticated:
        raise Unauthorized("this call needs a token: send it as Authorization: Bearer")
    if scope:
        require_scope(caller, scope)
    return caller.user_id


def require_scope(caller: Caller, scope: str) -> None:
    if scope not in caller.scopes:
        raise InsufficientScope(scope)
