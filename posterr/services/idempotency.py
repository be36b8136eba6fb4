"""Idempotency-Key on creates: a retry with the same key and body gets the first 201 again."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from posterr import logs
from posterr.context import Context
from posterr.db import Session
from posterr.errors import ApiError, Conflict, InvalidToken, ValidationFailed

log = logging.getLogger("posterr.idempotency")
KEY_FIELD = "Idempotency-Key"
_claims = itertools.count(1)
CLEANUP_EVERY = 100  # claims per process between two bounded deletes of expired records


@dataclass(frozen=True)
class Recorded:
    """What a creating service returns: what it created, as recorded inside the creation's own
    transaction (so the record commits with the creation or not at all). Only a Record makes one,
    so a service cannot answer a creation it did not record."""
    created: dict
    body: bytes  # created, as JSON: what is answered (and, with a key, stored)


# What a creating service calls inside its write's transaction, with what it created.
Record = Callable[[Session, dict], Recorded]


def unkept(_run: Session, created: dict) -> Recorded:
    """The Record of a creation without an Idempotency-Key: nothing to keep."""
    return Recorded(created, orjson.dumps(created))


@dataclass(frozen=True)
class Attempt:
    """One creating request, as its idempotency is judged: its route (`POST /api/posts`), the user
    it acts for (0 for none, as for a new account), the Idempotency-Key header as sent (None without
    one), its path and body, and where what it creates will live (`/api/posts/` + id)."""
    scope: str
    user_id: int
    token_digest: bytes | None  # the token the request acts with, checked again before a replay
    key_header: str | None
    path: str
    body: dict
    location_prefix: str


@dataclass(frozen=True)
class Created:
    body: bytes
    location: str
    replayed: bool = False


def _valid_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= 255 or not value.isascii() or not value.isprintable():
        raise ValidationFailed.of(KEY_FIELD, "must be 1 to 255 printable ASCII characters")
    return value


def create_once(ctx: Context, attempt: Attempt, create: Callable[[Record], Recorded],
                deliver_again: Callable[[dict], None] | None = None) -> Created:
    """Run create() once per (scope, user, key). The first request claims the key; a retry with the
    same request gets the stored 201, and the first such replay only runs deliver_again(what was
    created) before it, to redo the creation's cache work (the first request may have died between
    its commit and that work; a fan-out repeated at every replay would let anyone buy a thousand
    Redis pushes for the price of a request); the same key with
    another request is 422; a retry while the first is still running is 409. Only a completed
    creation is kept: a failed one frees the key. The result is recorded in the creation's own
    transaction (create returns the Recorded that only the Record it is given makes), and only while
    the key is still this request's: one that stalled past its claim's expiry, while a retry took the
    key over, rolls back."""
    key = _valid_key(attempt.key_header)
    location_prefix = attempt.location_prefix
    if key is None:
        return _answer(create(unkept), location_prefix)
    record_key = {"scope": attempt.scope, "user_id": attempt.user_id, "key": key, "claim": random.getrandbits(63)}
    # Keyed with the server's secret: a body may hold a password, which must not be guessable from
    # its digest.
    fingerprint = hmac.new(ctx.settings.secret_key.encode(), orjson.dumps(
        {"path": attempt.path, "body": attempt.body}, option=orjson.OPT_SORT_KEYS), hashlib.sha256).hexdigest()
    claim = None
    for _ in range(3):  # no row: a concurrent first claim committed between our two looks
        claim = ctx.db("claim_idempotency_key", fingerprint=fingerprint, token_digest=attempt.token_digest,
                       **record_key)
        if claim:
            break
    if claim is None or not claim["claimed"]:
        replayed = _replay(claim, fingerprint)
        if deliver_again and ctx.db("redelivery_claim", **record_key):
            deliver_again(orjson.loads(replayed.body))
        return replayed

    def record(run: Session, created: dict) -> Recorded:
        recorded = Recorded(created, orjson.dumps(created))
        if run("complete_idempotency_key", status=201, location=f"{location_prefix}{created['id']}",
               body=recorded.body, **record_key) is None:
            raise Conflict("this request took too long and a retry with its Idempotency-Key took over; "
                           "retry to get that one's answer")
        return recorded

    try:
        _clean_up_now_and_then(ctx)
        recorded = create(record)
    except BaseException:
        try:
            ctx.db.undo("release_idempotency_key", **record_key)
        except ApiError:
            pass  # PostgreSQL is unreachable: the claim is taken over after a minute, or once its server is gone
        raise
    return _answer(recorded, location_prefix)


def _answer(recorded: Recorded, location_prefix: str) -> Created:
    return Created(recorded.body, f"{location_prefix}{recorded.created['id']}")


def _clean_up_now_and_then(ctx: Context) -> None:
    """Expired records go in bounded batches, every CLEANUP_EVERY claims; a failure is left for the
    next batch, never the request's."""
    if next(_claims) % CLEANUP_EVERY:
        return
    try:
        ctx.db("delete_expired_idempotency_keys")
    except ApiError as error:
        logs.event(log, "idempotency_cleanup_failed", logging.WARNING, error=str(error))


def _replay(record: dict[str, Any] | None, fingerprint: str) -> Created:
    if record is not None and not record["token_live"]:
        raise InvalidToken()  # revoked since the edge looked it up: no acknowledgement, not even a replay
    if record is not None and record["fingerprint"] != fingerprint:
        raise ValidationFailed.of(KEY_FIELD, "was already used with another request body")
    if record is None or record["status"] is None:
        raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly")
    return Created(bytes(record["body"]), record["location"], replayed=True)

