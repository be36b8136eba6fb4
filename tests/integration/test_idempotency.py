"""Idempotency-Key on creates: one creation per key, replays of the first 201, 422 and 409."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial

import psycopg
import pytest
import requests

from tests.cluster.conftest import wait_for
from tests.integration.conftest import assert_problem, failing_trigger, row_count


def keyed(key: str) -> dict:
    return {"Idempotency-Key": key}


def test_a_retry_replays_the_first_response_and_creates_nothing(api, sql):
    alice = api.new_user("alice")["id"]
    first = api.post("/api/posts", {"user_id": alice, "content": "once"}, headers=keyed("k-1"))
    again = api.post("/api/posts", {"content": "once", "user_id": alice}, headers=keyed("k-1"))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert row_count(sql, "posts") == 1
    assert api.get(f"/api/users/{alice}").json()["posts_count"] == 1


def test_users_and_reposts_honour_keys_too(api, sql):
    first = api.post("/api/users", {"username": "bob"}, headers=keyed("u"))
    assert api.post("/api/users", {"username": "bob"}, headers=keyed("u")).content == first.content
    bob = first.json()["id"]
    post = api.new_post(bob)
    repost = api.post(f"/api/posts/{post['id']}/repost", {"user_id": bob}, headers=keyed("r"))
    assert api.post(f"/api/posts/{post['id']}/repost", {"user_id": bob}, headers=keyed("r")).content == repost.content
    assert row_count(sql, "users") == 1 and row_count(sql, "posts") == 2


def test_same_key_with_another_body_is_422(api, sql):
    alice = api.new_user("alice")["id"]
    api.post("/api/posts", {"user_id": alice, "content": "one"}, headers=keyed("k"))
    problem = assert_problem(api.post("/api/posts", {"user_id": alice, "content": "two"}, headers=keyed("k")), 422)
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert row_count(sql, "posts") == 1


def test_keys_are_scoped_to_the_route_and_the_user(api, sql):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    for user in (alice, bob):
        assert api.post("/api/posts", {"user_id": user, "content": "same"}, headers=keyed("shared")).status_code == 201
    assert api.post("/api/users", {"username": "carol"}, headers=keyed("shared")).status_code == 201
    assert row_count(sql, "posts") == 2


def test_a_failed_request_can_be_retried_with_the_same_key(api, sql):
    alice = api.new_user("alice")["id"]
    assert_problem(api.post("/api/posts", {"user_id": 999, "content": "x"}, headers=keyed("k")), 404)
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": " "}, headers=keyed("k2")), 422)
    assert api.post("/api/posts", {"user_id": alice, "content": " "}, headers=keyed("k2")).status_code == 422
    assert api.post("/api/posts", {"user_id": alice, "content": "fixed"}, headers=keyed("k2")).status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "é"])
def test_malformed_keys_are_422(api, key):
    response = api.post("/api/users", {"username": "dave"}, headers={"Idempotency-Key": key.encode()})
    assert_problem(response, 422)


def test_a_replay_outlives_a_refusal_by_the_daily_limit(api):
    alice = api.new_user("alice")["id"]
    first = api.post("/api/posts", {"user_id": alice, "content": "p0"}, headers=keyed("first"))
    for n in range(1, 5):
        api.new_post(alice, f"p{n}")
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "p5"}), 429)
    assert api.post("/api/posts", {"user_id": alice, "content": "p0"}, headers=keyed("first")).content == first.content


def test_two_simultaneous_requests_with_one_key_create_one_item(api, app_server, sql, servers):
    alice = api.new_user("alice")["id"]
    # Hold the author's quota row so the first request stays in flight while the second arrives.
    with psycopg.connect(servers.database_url) as blocker:
        blocker.execute("INSERT INTO post_quota (user_id, day, used) VALUES (%s, (now() AT TIME ZONE 'UTC')::date, 0)"
                        " ON CONFLICT DO NOTHING", (alice,))
        blocker.commit()
        blocker.execute("SELECT 1 FROM post_quota WHERE user_id = %s FOR UPDATE", (alice,))
        barrier = threading.Barrier(2)

        def send(_):
            with requests.Session() as session:
                barrier.wait(timeout=10)
                return session.post(f"{app_server}/api/posts", json={"user_id": alice, "content": "race"},
                                    headers=keyed("race"), timeout=30)

        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(send, n) for n in range(2)]
            deadline_answer = next(as_completed(futures, timeout=30))  # the one not stuck on the lock
            blocker.rollback()
            responses = [f.result() for f in futures]
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409], [r.text for r in responses]
    assert deadline_answer.result().status_code == 409
    assert_problem(next(r for r in responses if r.status_code == 409), 409)
    assert row_count(sql, "posts") == 1
    assert api.post("/api/posts", {"user_id": alice, "content": "race"}, headers=keyed("race")).status_code == 201


def test_a_key_that_is_not_utf8_is_422_not_500(api):
    response = api.post("/api/users", {"username": "erin"}, headers={"Idempotency-Key": b"\xd7\xf8\x9b"})
    assert_problem(response, 422)


def test_a_creation_and_the_record_of_its_result_commit_together(api, sql):
    """If recording the result fails, the post is not created either, and the key stays free."""
    alice = api.new_user("alice")["id"]
    with failing_trigger(sql, "idempotency_keys", "UPDATE", "40001"):
        failed = api.post("/api/posts", {"user_id": alice, "content": "once"}, headers=keyed("k-atomic"))
        assert_problem(failed, 503)
    assert row_count(sql, "posts") == 0
    assert api.get(f"/api/users/{alice}").json()["posts_count"] == 0
    retried = api.post("/api/posts", {"user_id": alice, "content": "once"}, headers=keyed("k-atomic"))
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert row_count(sql, "posts") == 1


def test_a_claim_taken_on_a_server_process_that_is_gone_is_taken_over_at_once(api, app_server, sql, servers):
    """After a restart or a fail-over, the retry of a request that died with the old server gets its
    creation at once instead of 409 for a minute; were the first request still alive, it could not
    record its result (the key is no longer its claim), so there is still one post."""
    alice = api.new_user("alice")["id"]

    def claim() -> int | None:
        row = sql.execute("SELECT claim FROM idempotency_keys WHERE key = 'orphan' AND status IS NULL").fetchone()
        return row[0] if row else None

    with psycopg.connect(servers.database_url) as blocker, ThreadPoolExecutor(2) as pool:
        blocker.execute("INSERT INTO post_quota (user_id, day, used) VALUES (%s, (now() AT TIME ZONE 'UTC')::date, 0)"
                        " ON CONFLICT DO NOTHING", (alice,))
        blocker.commit()
        blocker.execute("SELECT 1 FROM post_quota WHERE user_id = %s FOR UPDATE", (alice,))
        send = partial(requests.post, f"{app_server}/api/posts", json={"user_id": alice, "content": "orphan"},
                       headers=keyed("orphan"), timeout=30)
        first = pool.submit(send)
        first_claim = wait_for(claim, 10, "the first request's claim")
        # As if claimed on the server process before a restart: its postmaster started earlier.
        sql.execute("UPDATE idempotency_keys SET claimed_on = claimed_on - interval '1 hour' WHERE key = 'orphan'")
        retry = pool.submit(send)
        wait_for(lambda: claim() not in (None, first_claim), 10, "the retry to take the claim over")
        blocker.rollback()
        assert retry.result().status_code == 201
        assert_problem(first.result(), 409)
    assert row_count(sql, "posts") == 1
