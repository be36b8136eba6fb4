"""Bearer tokens (contract v2.0): whose a request's token is, logging in for a new one, listing and
revoking them; and the same for operators (`python -m posterr tokens`), given a session of their own."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from posterr import credentials, logs, passwords, presenters, validation
from posterr.context import Context
from posterr.data_tier import DataTier
from posterr.db import Session
from posterr.errors import InvalidToken, NotFound, Unauthorized
from posterr.recent_tokens import KNOWN_FOR, LIVE_FOR
from posterr.services.acting import WRITE, Actor, Caller, check_still_writes, token_holder
from posterr.services.pagination import NEWEST_FIRST_START, Keyset, Page, page_of

log = logging.getLogger("posterr.tokens")
TOKENS = Keyset("tokens", ("created_at", "id"))
WRONG_LOGIN = "the username or the password is wrong"


def caller_of(ctx: Context, token: str, *, rechecked: bool = False) -> Caller:
    """The holder of a live token (401 for any other), from this process's lookups or from the
    primary (a replica may not have seen its revocation yet). `rechecked`: the request's write checks
    the token again in its own transaction, so a lookup minutes old says enough (recent_tokens.py)."""
    digest = credentials.digest(token)
    caller = ctx.recent_tokens.get(digest, KNOWN_FOR if rechecked else LIVE_FOR)
    if caller is None:
        looked_up_at = time.monotonic()
        row = ctx.db.read_primary(lambda run: run("live_token", digest=digest))
        if row is None:
            raise InvalidToken()
        caller = Caller(user_id=row["user_id"], token_id=row["id"], token_digest=digest,
                        scopes=frozenset(row["scopes"]))
        ctx.recent_tokens.put(digest, caller.token_id, caller, looked_up_at)
    ctx.token_uses.used(caller.token_id)
    return caller


def write_uses(db: DataTier, token_ids: list[int], minutes: list[datetime]) -> None:
    """The minute each token was last used (posterr/token_uses.py writes its batches so)."""
    db("touch_tokens", ids=token_ids, minutes=minutes)


def log_in(ctx: Context, body: dict[str, Any], client: str) -> dict:
    """A new token for the username and password in `body`, with its scopes, name and lifetime.
    A wrong password and an unknown username cost the same and get the same 401; failures are
    limited per username and per client (posterr/login_limit.py)."""
    username = validation.login_text("username", body.get("username"))
    password = validation.login_text("password", body.get("password"))
    scopes = validation.token_scopes(body.get("scopes"))
    name = validation.token_name(body.get("name"))
    lifetime = validation.token_lifetime(body.get("expires_in"))
    possible_name = username if validation.USERNAME.fullmatch(username) else None  # others name no account
    ctx.login_attempts.check(possible_name, client)
    account = ctx.db.read_primary(lambda run: run("account_by_username", username=username)) if possible_name else None
    password_hash = account["password_hash"] if account else None
    if not passwords.matches(password_hash, password):
        ctx.login_attempts.failed(possible_name, client)
        logs.event(log, "login_failed", client=client)
        raise Unauthorized(WRONG_LOGIN)
    with ctx.db.transaction() as run:
        if passwords.needs_rehash(password_hash):
            run("set_password_hash", id=account["id"], password_hash=passwords.hashed(password))
        issued = issue(run, account["id"], scopes, name, lifetime)
    logs.event(log, "token_issued", user_id=account["id"], token_id=issued["id"], scopes=scopes)
    return issued


def issue(run: Session, user_id: int, scopes: list[str], name: str, lifetime: int | None) -> dict:
    """A new token of the user (the answer that holds it); only its digest is stored."""
    secret = credentials.new_token()
    row = run("insert_token", user_id=user_id, digest=credentials.digest(secret), hint=credentials.hint(secret),
              scopes=scopes, token_name=name, expires_in=lifetime)
    return presenters.new_token(row, secret)


def list_tokens(ctx: Context, caller: Caller, *, limit: str | None, cursor: str | None) -> Page:
    """The caller's live tokens, newest first (any live token of theirs may list them)."""
    user_id = token_holder(caller)
    size = validation.limit(limit)
    before = TOKENS.before(ctx.cursors, cursor, NEWEST_FIRST_START)
    ctx.token_uses.flush()  # this process's latest uses, this one's included, before they are listed
    rows = ctx.db.read_primary(lambda run: run("tokens_page", user_id=user_id, limit=size + 1, **before))
    return page_of(rows, size, ctx.cursors, TOKENS, presenters.token)


def revoke(ctx: Context, caller: Caller, token_id: int) -> None:
    """Revokes one of the caller's live tokens (a write token of theirs); another's, or none, is 404."""
    user_id = token_holder(caller, WRITE)
    with ctx.db.transaction() as run:
        check_still_writes(run, Actor(user_id, caller.token_digest))
        if run("revoke_token", id=token_id, user_id=user_id) is None:
            raise NotFound(f"you have no live token {token_id}")
    ctx.recent_tokens.forget_token(token_id)
    logs.event(log, "token_revoked", user_id=user_id, token_id=token_id)
