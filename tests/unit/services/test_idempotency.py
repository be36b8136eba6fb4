"""services/idempotency.py's contract, without a database: a creation is answered with exactly what
its Record recorded."""

from __future__ import annotations

import orjson

from posterr.services import idempotency
from posterr.services.idempotency import Attempt


def attempt(body: dict) -> Attempt:
    return Attempt("POST /api/posts", 0, None, None, "/api/posts", body, "/api/posts/")


def test_without_a_key_the_answer_is_what_the_unkept_record_made():
    created = {"id": 7, "content": "hi"}
    answer = idempotency.create_once(None, attempt({}), lambda record: record(None, created))
    assert (answer.body, answer.location, answer.replayed) == (orjson.dumps(created), "/api/posts/7", False)


