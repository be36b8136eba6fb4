"""services/idempotency.py's contract, without a database: a creation is answered with exactly what
its Record recorded, and the key's acting user follows the one id rule."""

from __future__ import annotations

import orjson
import pytest

from posterr.services import idempotency
from posterr.services.idempotency import Attempt


def attempt(body: dict) -> Attempt:
    return Attempt("POST /api/posts", None, "/api/posts", body, "/api/posts/")


def test_without_a_key_the_answer_is_what_the_unkept_record_made():
    created = {"id": 7, "content": "hi"}
    answer = idempotency.create_once(None, attempt({}), lambda record: record(None, created))
    assert (answer.body, answer.location, answer.replayed) == (orjson.dumps(created), "/api/posts/7", False)


@pytest.mark.parametrize(("body", "user"), [
    ({"user_id": 5}, 5), ({"user_id": 2**63 - 1}, 2**63 - 1), ({}, 0), ({"user_id": True}, 0),
    ({"user_id": "5"}, 0), ({"user_id": 0}, 0), ({"user_id": 2**63}, 0),
])
def test_keys_are_scoped_to_the_acting_user_by_the_id_rule(body, user):
    assert idempotency._acting_user(body) == user
