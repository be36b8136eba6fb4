"""services/idempotency.py's contract, without a database: a creation is answered with exactly what
its Record recorded, a key is checked before anything is claimed, and a retry's stored record is
judged (replayed, refused as another body, as still running, or as acting with a revoked token).
The claims themselves run against PostgreSQL: tests/integration/test_idempotency.py and
test_post_service.py."""

from __future__ import annotations

import orjson
import pytest

from posterr.errors import Conflict, InvalidToken, ValidationFailed
from posterr.services import idempotency
from posterr.services.idempotency import Attempt, Created


def attempt(body: dict, key: str | None = None) -> Attempt:
    return Attempt("POST /api/posts", 0, None, key, "/api/posts", body, "/api/posts/")


def test_without_a_key_the_answer_is_what_the_unkept_record_made():
    created = {"id": 7, "content": "hi"}
    answer = idempotency.create_once(None, attempt({}), lambda record: record(None, created))
    assert (answer.body, answer.location, answer.replayed) == (orjson.dumps(created), "/api/posts/7", False)


@pytest.mark.parametrize("key", ["", "k" * 256, "clé", "tab\there", "line\nbreak"])
def test_a_malformed_key_is_refused_before_anything_is_claimed_or_created(key):
    created = []
    # No context: a claim (or any other use of the database) would fail on None, not with a 422.
    with pytest.raises(ValidationFailed) as refused:
        idempotency.create_once(None, attempt({}, key), lambda record: created.append(record))
    assert refused.value.errors == [{"field": "Idempotency-Key",
                                     "message": "must be 1 to 255 printable ASCII characters"}]
    assert created == []


def stored(**changes) -> dict:
    """A record as claim_idempotency_key returns it for a key that another request claimed."""
    return {"claimed": False, "token_live": True, "fingerprint": "f1", "status": 201,
            "location": "/api/posts/7", "body": memoryview(b'{"id":7}'), **changes}


def test_a_completed_record_is_replayed_as_it_was_stored():
    assert idempotency._replay(stored(), "f1") == Created(b'{"id":7}', "/api/posts/7", replayed=True)


@pytest.mark.parametrize("record, fingerprint, refusal", [
    (stored(token_live=False), "f1", InvalidToken),  # revoked since: not even a replay
    (stored(token_live=False, fingerprint="f2"), "f1", InvalidToken),  # the token is judged first
    (stored(), "f2", ValidationFailed),  # the key with another request body
    (stored(fingerprint="f2", status=None), "f1", ValidationFailed),  # another body, still running
    (stored(status=None, location=None, body=None), "f1", Conflict),  # the first is still running
    (None, "f1", Conflict),  # claimed by a request that has not committed its claim yet
])
def test_a_retry_that_cannot_be_replayed_is_refused(record, fingerprint, refusal):
    with pytest.raises(refusal) as refused:
        idempotency._replay(record, fingerprint)
    assert type(refused.value) is refusal
