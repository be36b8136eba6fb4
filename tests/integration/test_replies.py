"""Replies and threads (API v1.1): creating replies, the lists that leave them out, a post's replies
and its conversation (/context), and the caches, counters and home timelines around them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.integration.conftest import Api, assert_problem, row_count
from tests.integration.pages import ids, next_url, walk


def reply(api, user_id: int, target_id: int, content: str = "a reply") -> dict:
    response = api.post("/api/posts", {"user_id": user_id, "content": content, "reply_to_id": target_id})
    assert response.status_code == 201, response.text
    return response.json()


def sql_reply(sql, user_id: int, target_id: int, content: str, seconds: int = 0) -> int:
    """A reply written directly (threads longer than the daily limit allows), `seconds` after now;
    the target's reply_count is kept exact as insert_post keeps it."""
    sql.execute("UPDATE posts SET reply_count = reply_count + 1 WHERE id = %s", (target_id,))
    return sql.execute("INSERT INTO posts (user_id, type, content, reply_to_id, created_at) "
                       "VALUES (%s, 'reply', %s, %s, now() + %s * interval '1 second') RETURNING id",
                       (user_id, content, target_id, seconds)).fetchone()[0]


# --- creating -------------------------------------------------------------------------------------

def test_a_reply_is_created_with_its_target_and_counted_on_it(api, alice, bob):
    parent = api.new_post(alice, "what do you think?")
    response = api.post("/api/posts", {"user_id": bob, "content": "I agree", "reply_to_id": parent["id"]})
    assert response.status_code == 201
    created = response.json()
    assert response.headers["Location"] == f"/api/posts/{created['id']}"
    assert created == {"id": created["id"], "user_id": bob, "username": "bob", "type": "reply",
                       "content": "I agree", "repost_id": None, "original": None, "reply_to_id": parent["id"],
                       "reply_to": {"id": parent["id"], "user_id": alice, "username": "alice"},
                       "repost_count": 0, "quote_count": 0, "reply_count": 0, "created_at": created["created_at"]}
    assert api.get(f"/api/posts/{created['id']}").json() == created
    assert api.get(f"/api/posts/{parent['id']}").json()["reply_count"] == 1
    assert api.get(f"/api/users/{bob}").json()["posts_count"] == 1


def test_the_replies_route_is_the_same_as_reply_to_id(api, alice, bob):
    parent = api.new_post(alice)
    response = api.post(f"/api/posts/{parent['id']}/replies", {"user_id": bob, "content": "same thing"})
    assert response.status_code == 201
    created = response.json()
    assert (created["type"], created["reply_to_id"], created["content"]) == ("reply", parent["id"], "same thing")
    assert response.headers["Location"] == f"/api/posts/{created['id']}"
    assert api.get(f"/api/posts/{parent['id']}").json()["reply_count"] == 1


@pytest.mark.parametrize("content", [None, "", " ", "\u2003\n", "a" * 778, "a\x00b", 7, ["x"], "\u200b\ufeff",
                                     "esc\x1b[2J"])
@pytest.mark.parametrize("route", ["posts", "replies"])
def test_a_reply_needs_content_like_a_post(api, sql, alice, content, route):
    parent = api.new_post(alice)
    body = {"user_id": alice} if content is None else {"user_id": alice, "content": content}
    if route == "posts":
        response = api.post("/api/posts", {**body, "reply_to_id": parent["id"]})
    else:
        response = api.post(f"/api/posts/{parent['id']}/replies", body)
    assert assert_problem(response, 422)["errors"][0]["field"] == "content"
    assert row_count(sql, "posts") == 1


def test_reply_to_id_with_a_repost_id_is_422(api, sql, alice):
    parent = api.new_post(alice)
    problem = assert_problem(api.post("/api/posts", {"user_id": alice, "content": "both",
                                                     "reply_to_id": parent["id"], "repost_id": parent["id"]}), 422)
    assert problem["errors"][0]["field"] == "reply_to_id"
    assert row_count(sql, "posts") == 1
    assert api.post("/api/posts", {"user_id": alice, "content": "fine", "reply_to_id": parent["id"],
                                   "repost_id": None}).json()["type"] == "reply"


@pytest.mark.parametrize("reply_to_id", ["1", 1.0, 1.5, True, 0, -3, [1], 2**63])
def test_bad_reply_to_id_is_422(api, sql, alice, reply_to_id):
    api.new_post(alice)
    problem = assert_problem(api.post("/api/posts", {"user_id": alice, "content": "x", "reply_to_id": reply_to_id}), 422)
    assert problem["errors"][0]["field"] == "reply_to_id"
    assert row_count(sql, "posts") == 1


def test_posts_quotes_and_replies_may_be_answered_and_threads_nest(api, alice, bob):
    post = api.new_post(alice, "a post")
    quote = api.new_post(bob, "a quote", repost_id=post["id"])
    first = reply(api, bob, post["id"])
    to_quote = reply(api, alice, quote["id"])
    deeper = reply(api, alice, first["id"], "deeper")
    own = reply(api, alice, deeper["id"], "answering myself")
    assert to_quote["reply_to"]["id"] == quote["id"]
    assert (deeper["reply_to"], own["reply_to"]) == ({"id": first["id"], "user_id": bob, "username": "bob"},
                                                      {"id": deeper["id"], "user_id": alice, "username": "alice"})


def test_a_repost_cannot_be_answered(api, sql, alice, bob):
    repost = api.new_post(bob, None, repost_id=api.new_post(alice)["id"])
    for response in (api.post("/api/posts", {"user_id": alice, "content": "x", "reply_to_id": repost["id"]}),
                     api.post(f"/api/posts/{repost['id']}/replies", {"user_id": alice, "content": "x"})):
        assert assert_problem(response, 422)["errors"][0]["field"] == "reply_to_id"
    assert row_count(sql, "posts") == 2


def test_an_unknown_target_is_404(api, sql, alice):
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "x", "reply_to_id": 12345}), 404)
    for path in ("/api/posts/12345/replies", "/api/posts/abc/replies", "/api/posts/0/replies"):
        assert_problem(api.post(path, {"user_id": alice, "content": "x"}), 404)
    assert row_count(sql, "posts") == 0 and row_count(sql, "post_quota") == 0


def test_the_replies_route_needs_a_json_body(api, alice):
    parent = api.new_post(alice)
    assert_problem(api.request("POST", f"/api/posts/{parent['id']}/replies", data=b"{oops",
                               headers={"Content-Type": "application/json"}), 400)
    assert_problem(api.post(f"/api/posts/{parent['id']}/replies", {"content": "who?"}), 422)


def test_checks_come_in_the_documented_order(api, sql, alice):
    """400 → 422 → 404 → 429: with the day used up, an unknown or repost target still says so."""
    parent = api.new_post(alice)
    repost = api.new_post(alice, None, repost_id=parent["id"])
    assert_problem(api.post("/api/posts", {"user_id": 999, "content": "", "reply_to_id": 12345}), 422)
    assert_problem(api.post("/api/posts", {"user_id": 999, "content": "x", "reply_to_id": parent["id"]}), 404)
    for n in range(3):
        reply(api, alice, parent["id"], f"reply {n}")
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "x", "reply_to_id": 12345}), 404)
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "x", "reply_to_id": repost["id"]}), 422)
    problem = assert_problem(api.post("/api/posts", {"user_id": alice, "content": "x", "reply_to_id": parent["id"]}), 429)
    assert "replies" in problem["detail"]
    assert api.get(f"/api/posts/{parent['id']}").json()["reply_count"] == 3
    assert api.get(f"/api/users/{alice}").json()["posts_count"] == 5


def test_replies_take_the_idempotency_key_on_both_routes(api, sql, alice, bob):
    parent = api.new_post(alice)
    for path, body in ((f"/api/posts/{parent['id']}/replies", {"user_id": bob, "content": "once"}),
                       ("/api/posts", {"user_id": bob, "content": "once", "reply_to_id": parent["id"]})):
        first = api.post(path, body, headers={"Idempotency-Key": "reply-1"})
        again = api.post(path, body, headers={"Idempotency-Key": "reply-1"})
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert api.get(f"/api/posts/{parent['id']}").json()["reply_count"] == 2  # one per route
    assert row_count(sql, "posts") == 3


def test_simultaneous_replies_are_counted_exactly(api, app_server):
    parent = api.new_post(api.new_user("op")["id"])
    users = [api.new_user(f"r{n}")["id"] for n in range(6)]

    def send(user_id: int) -> list[int]:
        with requests.Session() as session:
            return [session.post(f"{app_server}/api/posts/{parent['id']}/replies",
                                 json={"user_id": user_id, "content": f"#{n}"}, timeout=15).status_code
                    for n in range(6)]

    with ThreadPoolExecutor(len(users)) as pool:
        statuses = sorted(code for codes in pool.map(send, users) for code in codes)
    assert statuses == [201] * 30 + [429] * 6
    assert api.get(f"/api/posts/{parent['id']}").json()["reply_count"] == 30
    assert len(walk(api, f"/api/posts/{parent['id']}/replies?limit=100")[0]) == 30


def test_a_reply_may_be_reposted_and_quoted_and_those_are_listed(api, alice, bob):
    answer = reply(api, bob, api.new_post(alice)["id"], "worth sharing")
    repost = api.new_post(alice, None, repost_id=answer["id"])
    quote = api.new_post(alice, "indeed", repost_id=answer["id"])
    assert repost["original"]["type"] == "reply" and repost["content"] == "worth sharing"
    assert quote["original"]["type"] == "reply"
    counts = api.get(f"/api/posts/{answer['id']}").json()
    assert (counts["repost_count"], counts["quote_count"], counts["reply_count"]) == (1, 1, 0)
    assert ids(api.get(f"/api/posts?author_id={alice}"))[:2] == [quote["id"], repost["id"]]
    assert answer["id"] not in ids(api.get("/api/posts"))


# --- lists ----------------------------------------------------------------------------------------

@pytest.fixture
def conversation(api):
    """alice posts and quotes; bob replies to her post (a reply with the word "zebra") and posts;
    carol follows alice and bob. (alice, bob, carol, {name: id})."""
    alice, bob, carol = (api.new_user(name)["id"] for name in ("alice", "bob", "carol"))
    api.follow(carol, alice)
    api.follow(carol, bob)
    made = {"post": api.new_post(alice, "zebra crossing")["id"]}
    made["reply"] = reply(api, bob, made["post"], "a zebra reply")["id"]
    made["quote"] = api.new_post(alice, "zebra quote", repost_id=made["post"])["id"]
    made["bob's post"] = api.new_post(bob, "plain zebra")["id"]
    return alice, bob, carol, made


LISTS = ["/api/posts", "/api/posts?sort_by=trending", "/api/posts?author_id={bob}",
         "/api/posts?author_id={bob}&sort_by=trending", "/api/posts?followed_by={carol}",
         "/api/posts?followed_by={carol}&sort_by=trending", "/api/posts?keyword=zebra",
         "/api/posts/search?keyword=zebra", "/api/posts/search?keyword=reply&author_id={bob}",
         "/api/posts?start_date=2000-01-01", "/api/posts?followed_by={carol}&author_id={bob}"]


@pytest.mark.parametrize("url", LISTS)
def test_every_list_leaves_replies_out_unless_asked(api, conversation, url):
    alice, bob, carol, made = conversation
    url = url.format(alice=alice, bob=bob, carol=carol)
    joiner = "&" if "?" in url else "?"
    for query in ("", f"{joiner}include_replies=false", f"{joiner}include_replies="):
        assert made["reply"] not in ids(api.get(url + query)), url + query
    assert made["reply"] in ids(api.get(f"{url}{joiner}include_replies=true"))


@pytest.mark.parametrize("value", ["yes", "1", "True", "TRUE", "no", "0"])
def test_include_replies_is_true_or_false(api, conversation, value):
    for url in ("/api/posts", "/api/posts/search?keyword=zebra"):
        problem = assert_problem(api.get(f"{url}{'&' if '?' in url else '?'}include_replies={value}"), 422)
        assert problem["errors"][0]["field"] == "include_replies"


def test_posts_and_replies_is_the_authors_whole_feed_newest_first(api, conversation):
    _, bob, _, made = conversation
    more = [reply(api, bob, made["quote"], f"more {n}")["id"] for n in range(3)]
    expected = [*reversed(more), made["bob's post"], made["reply"]]
    assert ids(api.get(f"/api/posts?author_id={bob}&include_replies=true")) == expected
    pages = walk(api, f"/api/posts?author_id={bob}&include_replies=true&limit=2")
    assert pages == [expected[:2], expected[2:4], expected[4:]]
    first = api.get(f"/api/posts?author_id={bob}&include_replies=true&limit=2")
    assert "include_replies=true" in next_url(first)
    assert ids(api.get(f"/api/posts?author_id={bob}")) == [made["bob's post"]]


def test_a_keyword_matches_a_replys_own_content(api, conversation):
    _, _, _, made = conversation
    assert ids(api.get("/api/posts/search?keyword=a%20zebra%20reply&include_replies=true")) == [made["reply"]]
    assert ids(api.get("/api/posts/search?keyword=crossing&include_replies=true")) == [made["post"]]


def test_trending_does_not_count_replies(api, alice, bob):
    answered = api.new_post(alice, "many replies")
    quoted = api.new_post(alice, "one quote")
    for n in range(3):
        reply(api, bob, answered["id"], f"r{n}")
    api.new_post(bob, "q", repost_id=quoted["id"])
    trending = ids(api.get("/api/posts?sort_by=trending"))
    assert trending.index(quoted["id"]) < trending.index(answered["id"])


# --- a post's replies -----------------------------------------------------------------------------

def test_replies_are_the_direct_ones_oldest_first(api, sql, alice, bob):
    parent = api.new_post(alice)
    direct = [reply(api, bob, parent["id"], f"direct {n}")["id"] for n in range(3)]
    reply(api, alice, direct[0], "nested, not direct")
    tied = [sql_reply(sql, bob, parent["id"], f"tied {n}", seconds=60) for n in range(2)]  # one created_at
    assert ids(api.get(f"/api/posts/{parent['id']}/replies")) == direct + tied
    assert ids(api.get(f"/api/posts/{direct[1]}/replies")) == []


def test_replies_are_paginated_like_every_list(api, sql, alice):
    parent = api.new_post(alice)
    made = [sql_reply(sql, alice, parent["id"], f"r{n}", seconds=n // 3) for n in range(12)]
    assert walk(api, f"/api/posts/{parent['id']}/replies?limit=5") == [made[:5], made[5:10], made[10:]]
    assert next_url(api.get(f"/api/posts/{parent['id']}/replies?limit=12")) is None  # exactly full: no Link
    feed_cursor = next_url(api.get("/api/posts?include_replies=true&limit=1")).split("cursor=")[1]
    assert_problem(api.get(f"/api/posts/{parent['id']}/replies?cursor={feed_cursor}"), 422)
    assert_problem(api.get(f"/api/posts/{parent['id']}/replies?cursor=forged"), 422)
    assert_problem(api.get(f"/api/posts/{parent['id']}/replies?limit=0"), 422)


@pytest.mark.parametrize("path", ["/api/posts/999/replies", "/api/posts/x/replies", "/api/posts/999/context",
                                  "/api/posts/0/context"])
def test_threads_of_an_unknown_post_are_404(api, path):
    assert_problem(api.get(path), 404)


# --- a post's conversation ------------------------------------------------------------------------

def context_ids(api, post_id: int) -> tuple[list[int], list[int]]:
    response = api.get(f"/api/posts/{post_id}/context")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"ancestors", "descendants"}
    return [p["id"] for p in body["ancestors"]], [p["id"] for p in body["descendants"]]


def test_context_gives_ancestors_root_first_and_descendants_depth_first(api, sql, alice, bob):
    root = api.new_post(alice, "root")["id"]
    r1 = sql_reply(sql, bob, root, "r1", seconds=1)
    r2 = sql_reply(sql, bob, root, "r2", seconds=2)
    r1a = sql_reply(sql, alice, r1, "r1a", seconds=3)
    r1a1 = sql_reply(sql, bob, r1a, "r1a1", seconds=4)
    r1b = sql_reply(sql, alice, r1, "r1b", seconds=5)
    assert context_ids(api, root) == ([], [r1, r1a, r1a1, r1b, r2])
    assert context_ids(api, r1a1) == ([root, r1, r1a], [])
    assert context_ids(api, r1) == ([root], [r1a, r1a1, r1b])
    body = api.get(f"/api/posts/{r1a}/context").json()
    assert body["ancestors"][1] == api.get(f"/api/posts/{r1}").json()  # whole post objects


def test_context_stops_at_the_forty_nearest_ancestors_and_two_hundred_descendants(api, sql, alice):
    chain = [api.new_post(alice, "root")["id"]]
    for n in range(45):
        chain.append(sql_reply(sql, alice, chain[-1], f"deep {n}", seconds=n + 1))
    assert context_ids(api, chain[-1])[0] == chain[-41:-1]  # the root is left out
    assert context_ids(api, chain[40])[0] == chain[:40]
    wide = api.new_post(alice, "wide")["id"]
    first = sql_reply(sql, alice, wide, "first", seconds=1)
    under_first = [sql_reply(sql, alice, first, f"under {n}", seconds=2 + n) for n in range(150)]
    later = [sql_reply(sql, alice, wide, f"later {n}", seconds=200 + n) for n in range(100)]
    assert context_ids(api, wide)[1] == [first, *under_first, *later][:200]


def test_a_repost_has_an_empty_context(api, alice, bob):
    repost = api.new_post(bob, None, repost_id=api.new_post(alice)["id"])
    assert api.get(f"/api/posts/{repost['id']}/context").json() == {"ancestors": [], "descendants": []}


# --- caches and home timelines --------------------------------------------------------------------

def test_a_reply_is_visible_at_once_where_replies_are_shown_and_nowhere_else(api, alice, bob, carol_follows):
    carol = carol_follows
    parent = api.new_post(alice, "the parent")
    feeds = ["/api/posts", "/api/posts?sort_by=trending", f"/api/posts?author_id={alice}",
             f"/api/posts?followed_by={carol}"]
    before = {url: api.get(url).json() for url in feeds}  # cached first pages and a home timeline
    api.get(f"/api/posts/{parent['id']}")
    api.get(f"/api/posts?author_id={bob}&include_replies=true")
    api.get(f"/api/users/{bob}")
    answer = reply(api, bob, parent["id"], "answering")
    assert api.get(f"/api/posts/{parent['id']}").json()["reply_count"] == 1
    for url in feeds:
        after = api.get(url).json()
        assert [p["id"] for p in after] == [p["id"] for p in before[url]], url
        assert next(p for p in after if p["id"] == parent["id"])["reply_count"] == 1, url
    assert ids(api.get(f"/api/posts?author_id={bob}&include_replies=true")) == [answer["id"]]
    assert ids(api.get(f"/api/posts/{parent['id']}/replies")) == [answer["id"]]
    assert context_ids(api, parent["id"]) == ([], [answer["id"]])
    assert api.get(f"/api/users/{bob}").json()["posts_count"] == 1
    assert answer["id"] in ids(api.get(f"/api/posts?followed_by={carol}&include_replies=true"))


@pytest.fixture
def carol_follows(api, alice, bob) -> int:
    carol = api.new_user("carol")["id"]
    api.follow(carol, alice)
    api.follow(carol, bob)
    return carol


def test_a_home_timeline_built_after_replies_holds_none(api, alice, bob, carol_follows, redis_client):
    parent = api.new_post(alice, "p")
    reply(api, bob, parent["id"], "r")
    # The timeline is built from PostgreSQL on the next read. (Only the timelines go: a flush would
    # also drop the clients' write positions, and a lagging replica could then answer this client.)
    for key in redis_client.scan_iter(match="posterr:timeline:*"):
        redis_client.delete(key)
    assert ids(api.get(f"/api/posts?followed_by={carol_follows}")) == [parent["id"]]
    assert len(ids(api.get(f"/api/posts?followed_by={carol_follows}&include_replies=true"))) == 2


def test_the_old_frontends_requests_still_work(api: Api, alice, bob):
    """It never sends reply_to_id nor include_replies; replies by others do not reach its lists."""
    post = api.new_post(alice, "hi")
    reply(api, bob, post["id"])
    assert api.post("/api/posts", {"user_id": bob, "content": "x", "repost_id": None}).status_code == 201
    assert api.post(f"/api/posts/{post['id']}/repost", {"user_id": bob}).status_code == 201
    assert all(p["type"] != "reply" for p in api.get("/api/posts?limit=100").json())
