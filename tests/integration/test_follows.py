"""Follows: idempotent PUT and DELETE, exact counters, follower and following lists."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import chain

import pytest

from tests.integration.conftest import assert_problem, row_count
from tests.integration.pages import next_url
from tests.integration.workers import sessions_on_several_workers


def counts(api, user_id):
    user = api.get(f"/api/users/{user_id}").json()
    return user["followers_count"], user["following_count"]


def test_follow_is_idempotent_and_counted_once(api, sql):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    for _ in range(2):
        response = api.put(f"/api/users/{alice}/following/{bob}")
        assert response.status_code == 204 and response.content == b""
    assert counts(api, alice) == (0, 1) and counts(api, bob) == (1, 0)
    assert row_count(sql, "follows") == 1


def test_unfollow_is_idempotent(api):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    api.follow(alice, bob)
    for _ in range(2):
        assert api.delete(f"/api/users/{alice}/following/{bob}").status_code == 204
    assert counts(api, alice) == (0, 0) and counts(api, bob) == (0, 0)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_unknown_users_are_404_and_change_nothing(api, sql, method):
    alice = api.new_user("alice")["id"]
    for path in (f"/api/users/{alice}/following/999", f"/api/users/999/following/{alice}",
                 f"/api/users/abc/following/{alice}", f"/api/users/{alice}/following/0"):
        assert_problem(api.request(method, path), 404)
    assert row_count(sql, "follows") == 0 and counts(api, alice) == (0, 0)


def test_self_follow_is_422(api, sql):
    alice = api.new_user("alice")["id"]
    assert_problem(api.put(f"/api/users/{alice}/following/{alice}"), 422)
    assert row_count(sql, "follows") == 0


def test_follower_and_following_lists_newest_follow_first_with_pages(api):
    star = api.new_user("star")["id"]
    fans = [api.new_user(f"fan{n}")["id"] for n in range(5)]
    for fan in fans:
        api.follow(fan, star)
    seen, url = [], f"/api/users/{star}/followers?limit=2"
    while url:
        response = api.get(url)
        assert response.status_code == 200
        seen += [user["id"] for user in response.json()]
        url = next_url(response)
    assert seen == fans[::-1]
    assert [u["username"] for u in api.get(f"/api/users/{fans[0]}/following").json()] == ["star"]
    assert api.get(f"/api/users/{star}/following").json() == []
    assert_problem(api.get("/api/users/999/followers"), 404)
    assert_problem(api.get("/api/users/999/following"), 404)
    assert_problem(api.get(f"/api/users/{star}/followers?limit=0"), 422)


def test_refollowing_moves_to_the_front(api):
    star = api.new_user("star")["id"]
    first, second = api.new_user("first")["id"], api.new_user("second")["id"]
    api.follow(first, star)
    api.follow(second, star)
    api.delete(f"/api/users/{first}/following/{star}")
    api.follow(first, star)
    assert [u["id"] for u in api.get(f"/api/users/{star}/followers").json()] == [first, second]


def test_parallel_follows_and_unfollows_keep_counters_exact(api, app_server, sql):
    users = [api.new_user(f"user{n}")["id"] for n in range(6)]
    pairs = [(a, b) for a in users for b in users if a != b]
    barrier = threading.Barrier(12)
    sessions = sessions_on_several_workers(app_server, 12)  # the churn runs in both processes

    def churn(worker: int) -> list[int]:
        statuses = []
        with sessions[worker] as session:
            barrier.wait(timeout=30)
            for n, (a, b) in enumerate(pairs):
                method = "PUT" if (n + worker) % 3 else "DELETE"
                statuses.append(session.request(method, f"{app_server}/api/users/{a}/following/{b}",
                                                timeout=30).status_code)
        return statuses

    with ThreadPoolExecutor(12) as pool:
        statuses = list(chain.from_iterable(pool.map(churn, range(12))))
    assert set(statuses) == {204}
    drift = sql.execute("""
        SELECT count(*) FROM users u
        WHERE u.followers_count <> (SELECT count(*) FROM follows WHERE followee_id = u.id)
           OR u.following_count <> (SELECT count(*) FROM follows WHERE follower_id = u.id)""").fetchone()[0]
    assert drift == 0


def test_follower_and_following_lists_page_to_the_end_over_equal_follow_times(api, sql):
    """Follows made at the same instant (a few moments for many follows) are ordered by the other
    user's id, and paging through them by Link yields each exactly once at every page size."""
    star = api.new_user("star")["id"]
    fans = [api.new_user(f"fan{n}")["id"] for n in range(13)]
    for fan in fans:
        api.follow(fan, star)
        api.follow(star, fan)
    moments = ["2026-03-01 10:00:00.000001+00", "2026-03-01 10:00:00.000002+00", "2026-03-02 00:00:00+00"]
    for n, fan in enumerate(fans):
        moment = moments[(n * 7) % 3]
        sql.execute("UPDATE follows SET created_at = %s WHERE (follower_id, followee_id) IN ((%s, %s), (%s, %s))",
                    (moment, fan, star, star, fan))
    ordered = [fan for _, fan in sorted(((moments[(n * 7) % 3], fan) for n, fan in enumerate(fans)), reverse=True)]
    for kind in ("followers", "following"):
        for limit in (1, 2, 5):
            seen, url = [], f"/api/users/{star}/{kind}?limit={limit}"
            while url:
                assert len(seen) <= len(fans), f"the {kind} pages do not end"
                response = api.get(url)
                assert response.status_code == 200, response.text
                page = [user["id"] for user in response.json()]
                assert 1 <= len(page) <= limit
                seen += page
                url = next_url(response)
                assert url is None or len(page) == limit
            assert seen == ordered, (kind, limit)
