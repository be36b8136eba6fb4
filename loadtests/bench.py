"""`make bench`: requests per second and latency of each kind of request, measured with wrk.

    python -m loadtests.bench [--posts 10000] [--users 1000] [--duration 10s] [--connections 32]
                              [--threads 2] [--only NAME,…] [--split-search] [--reseed]

What it does, in order:
1. installs wrk with apt-get when it is missing (as root; log: loadtests/results/install.log);
2. on the configured PostgreSQL server, migrates `posterr_bench_seed` and seeds it unless it holds
   this seed already (recorded as the database's comment), then copies it to a fresh
   `posterr_bench`, so every run (and its POSTs) starts from the same rows; clears the posterr keys
   of Redis database 11 (the benchmark's own); issues bearer tokens to up to 10,000 seeded users in
   that copy (loadtests/bulk_tokens.py), for create_post_token;
3. starts gunicorn with posterr/gunicorn_conf.py (workers = CPU count) on a free port with the
   rate limit at a rate no run reaches and a daily limit of 1,000,000, so nothing is refused, in
   POSTERR_AUTH=legacy mode, so that the v1.1 POSTs (user_id in the body) and the ones with a
   token are served by the same app;
4. runs wrk against each row below at a fixed concurrency, one after the other, in --rounds rounds
   (3; the rows alternate), and prints one table of medians: requests/s, p50, p99, CPU time per
   request, each as a share of /healthz's in the same run, and the answers that were not 2xx/3xx.
   The same goes, with every round's figures, to loadtests/results/bench-<timestamp>.json;
5. stops gunicorn, on success, error or Ctrl-C alike.

CPU time per request is the figure to compare: on a shared two-core machine requests/s swings by 2x
from minute to minute, while the CPU a request costs holds far better. It is the whole machine's busy
time during the row (user + nice + system + irq + softirq from /proc/stat; idle, iowait and steal
left out), less wrk's own CPU, divided by the requests served: the app, PostgreSQL and Redis
together. Other programs running meanwhile count too, so run nothing else while measuring.

Rows:
- healthz: GET /healthz — no database, no Redis: the ceiling of the HTTP stack.
- feed, cached: GET /api/posts, the same URL all the time (the first page the cache serves).
- feed, uncached: GET /api/posts?start_date=2000-01-01. Every seeded post is newer, so the page
  is the same as the one above, but a date filter is not a cacheable first page: it measures the
  query (page_latest over posts_created_at_id_idx) and the rendering behind the cache.
- deep page: the URL the Link headers lead to 50 pages down the global feed (a keyset cursor).
- search: /api/posts/search?keyword=… rotating over rare, medium and common words (a wrk Lua
  script); --split-search adds one row per group (search_rare, search_medium, search_common; naming
  one in --only measures it without --split-search).
- search_short: the same rotating over keywords without three consecutive letters or digits (`zq`,
  `~~`, `a.b`), which no trigram can serve: since contract v2.1 each is matched against the newest
  100,000 posts only (`Search-Scope: recent`), and none is in a seeded post, so each reads the
  whole of what it may search.
- followed_by: /api/posts?followed_by=ID, ID rotating over every seeded user.
- following_20, following_200, following_2000: the "Following" home feed, first page
  (/api/posts?followed_by=ID, always the same URL) of a reader user who follows exactly 20, 200 or
  2,000 seeded users (evenly spread over their ids); following_20_p20, following_200_p20,
  following_2000_p20: page 20 of the same feed, reached by following its Link rel="next" cursor 19
  times. The readers (`reader20`, …) are made in the seeded template by db/seed/readers.sql, an
  idempotent step with exact follow counters, before each copy. A reader needs that many seeded
  users besides itself (2,000 needs --users 2000 or more, BENCH_USERS=…): the rows of one that
  cannot be made are left out, with a note under the table. A feed shorter than 20 pages gives its
  last page, with a warning (as the deep page does). These rows also check that the page is not
  empty before measuring.
- context_deep_root, context_deep_middle, context_deep_leaf, context_wide: GET /api/posts/{id}/context
  in the two threads db/seed/seed.sql makes (at 1M posts, one 1,000 replies deep and one 10,000
  wide): the deep thread's root (200 descendants, no ancestors), its middle reply (40 ancestors and
  200 descendants), its last reply (40 ancestors, no descendants), and the wide thread's root
  (the first 200 of its 10,000 replies). replies_wide: GET /api/posts/{id}/replies, the first page
  of the wide thread's root. Left out, with a note, when the seed has no such threads.
- profile: GET /api/users/{id} of one seeded user.
- create post: POST /api/posts, the author drawn at random among the seeded users per request.
- create_post_token: the same POSTs as a v2.0 client sends them, without user_id and with the
  bearer token of an author drawn at random per request among the up to 10,000 seeded users given
  one (evenly spread over their ids). Its target: at most 1.10 times create_post's CPU per request
  (issue 32); with --only, naming it measures create_post too (each row named brings the
  yardsticks of its targets).
- create_post_sync (with --sync-standby, `make bench BENCH_SYNC=1`): the same POSTs while each commit
  waits for a synchronous standby, as under Patroni's synchronous_mode (make ha). A streaming replica
  of the local PostgreSQL (scripts/services.sh replica-up; a base backup the first time) streams
  during every row; during this row only, the primary's synchronous_standby_names names it (ALTER
  SYSTEM, reloaded; reset after the row, even on Ctrl-C), so create_post beside it is the same
  servers without the wait. Needs the project-local PostgreSQL (no DATABASE_URL of your own).
- post_fans_10, post_fans_1000, post_fans_100000: POST /api/posts, always by the same author, one
  followed by exactly 10, 1,000 or 100,000 users. A new post is pushed into the home timeline of
  each follower that has one, up to POSTERR_FANOUT_MAX_FOLLOWERS (1,000) followers; an author with
  more is merged at read time instead (1,000 is the most that is pushed: the worst case). So that
  every follower is pushed to, the followers of the authors that are pushed (10 and 1,000) are each
  given a home timeline before the rows run (one GET of their Following feed, 8 at a time; rebuilt when a row
  could outlast the timelines' POSTERR_TIMELINE_TTL), and after the rounds a warning says so if
  any of them holds no post (the pushes did not land). The authors (`author10`, …) and their
  followers (`fan1` … `fan100000`, users apart from the seeded ones, so the other rows are
  unchanged) are made in the seeded template by db/seed/fans.sql, an idempotent step like
  readers.sql. The app's daily limit of 1,000,000 lets one author post that often (each run
  starts from the template, with no posts counted today); its posts queue on its own quota row,
  as one author's do.
- peer (with --peer-url URL, `make bench PEER_URL=…`): GET URL of another service you started
  yourself, a yardstick measured in the same run and the same way (its CPU counts as the machine's).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

from loadtests import bulk_tokens, harness, profiling
from loadtests.harness import say

# Keywords by the share of seeded posts and quotes that contain them (case-insensitive substring;
# measured on 10k and 1M seeds): rare ≈ 0.1 % (one hashtag of db/seed/seed.sql's 997, and none of
# #9960…), medium ≈ 1–2 % (the vocabulary's rarest words), common ≈ 15–26 %.
KEYWORDS = {
    "rare": ["#996", "#501", "#333", "#808"],
    "medium": ["axolotl", "picture", "quokka", "zebra"],
    "common": ["the", "an", "in"],
}
# Keywords without three consecutive letters or digits (no trigram of pg_trgm's to look up) that no
# seeded post holds: each search reads all it may, the worst case of the search_short row.
SHORT_KEYWORDS = ["zq", "~~", "a.b"]
SPLIT_SEARCH = tuple(f"search_{group}" for group in ("rare", "medium", "common"))
DEEP_PAGES = 50
FOLLOWING = (20, 200, 2000)  # how many seeded users each reader follows (a pair of rows each)
FOLLOWING_PAGE = 20  # the deeper of the pair: this page of the reader's feed, by cursor
PROFILE_OFFSET = 41  # which seeded user's profile (low id + this, wrapped)
FANS = (10, 1000, 100_000)  # followers of each post_fans_N row's author
TIMELINE_THREADS = 8  # concurrent GETs when giving the fans their home timelines
ALWAYS = ("floor_hello", "floor_feed", "healthz")  # rows measured even with --only: the yardsticks

LUA_REPORT = r"""
local thread_count = 0
setup = function(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"p50_us":%.0f,"p90_us":%.0f,' ..
    '"p99_us":%.0f,"max_us":%.0f,"mean_us":%.1f,"connect_errors":%.0f,"read_errors":%.0f,' ..
    '"write_errors":%.0f,"timeouts":%.0f,"non_2xx_3xx":%.0f}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.timeout, e.status))
end
"""

LUA_ROTATE = r"""
local paths = {%(paths)s}
local next_path = 1
init = function(args)
  math.randomseed(os.time() * 100 + (thread_id or 0))
  next_path = math.random(#paths)
end
request = function()
  next_path = next_path %% #paths + 1
  return wrk.format("GET", paths[next_path])
end
"""

LUA_RANDOM_USER = r"""
local low, high = %(low)d, %(high)d
init = function(args)
  math.randomseed(os.time() * 100 + (thread_id or 0))
end
request = function()
  return wrk.format("GET", string.format("%(template)s", math.random(low, high)))
end
"""

# A post's content is drawn like a seeded post's (five words of the seed's vocabulary and a hashtag),
# so that the posts a run creates, the newest ones, leave keyword search rows measuring what they would
# over seeded posts alone (posts of other words at the top made every later search scan past them).
# Its author is drawn at random from low..high and named by user_id, as the previous frontend does; or,
# given a file of tokens (loadtests/bulk_tokens.py, read from the run's temporary folder rather than
# written into the script), as a v2.0 client sends it: no user_id, the bearer token of a random author.
LUA_POST = r"""
local low, high, tokens_file = %(low)d, %(high)d, %(tokens_file)s
local words = {%(words)s}
local tokens = {}
if tokens_file then for line in io.lines(tokens_file) do tokens[#tokens + 1] = line end end
local headers = {["Content-Type"] = "application/json", ["Accept"] = "application/json"}
init = function(args)
  math.randomseed(os.time() * 100 + (thread_id or 0))
end
request = function()
  local picked = {}
  for i = 1, 5 do picked[i] = words[math.random(#words)] end
  local content = string.format("%%s #%%d", table.concat(picked, " "), math.random(0, 996))
  local body
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
    body = string.format('{"content": "%%s"}', content)
  else
    body = string.format('{"user_id": %%d, "content": "%%s"}', math.random(low, high), content)
  end
  return wrk.format("POST", "/api/posts", headers, body)
end
"""


def post_script(low: int, high: int, tokens_file: str | None = None) -> str:
    """LUA_POST for authors low..high, or for the holders of the tokens in tokens_file."""
    return LUA_POST % {"low": low, "high": high, "words": lua_strings(seed_vocabulary()),
                       "tokens_file": lua_strings([tokens_file]) if tokens_file else "nil"}


@dataclass
class Row:
    name: str
    what: str  # how it is shown in the table
    path: str  # the request wrk's URL names (and the check request, for scripted rows)
    script: str = ""  # Lua besides the report
    method: str = "GET"
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)  # of the check request (wrk's come from the script)
    expect: int = 200
    nonempty: bool = False  # check() also wants a non-empty JSON list (a page with posts)
    base: str = "app"  # the server it is sent to: app, floor (loadtests/floor.py) or peer (a full URL)
    sync_standby: bool = False  # measured while each commit waits for a synchronous standby (--sync-standby)
    result: dict = field(default_factory=dict)


@dataclass
class Pages:
    """Paths of uncached pages, reached by following Link headers as a client would."""
    deep: str  # the global feed, DEEP_PAGES pages down
    author: str  # an author's feed, page 2
    trending: str  # the global feed by trending, page 2


@dataclass
class Following:
    """A reader's pair of rows: its feed's first page and the page FOLLOWING_PAGE pages in."""
    count: int  # accounts the reader follows
    reader: int  # its user id
    deep: str = ""  # the path of the deeper page
    pages_followed: int = 0  # Link rel="next" cursors followed to reach it


@dataclass
class Threads:
    """The post ids of the seeded threads (db/seed/seed.sql's `threads` step)."""
    deep_root: int
    deep_middle: int
    deep_leaf: int
    wide_root: int


@dataclass
class Author:
    """A post_fans_N row's author, followed by exactly `fans` users (fan1 … fanN)."""
    fans: int  # its followers
    author: int  # its user id
    timelines: list[int] = field(default_factory=list)  # followers given a home timeline before the row
    pushed: int | None = None  # of those, how many had posts in their timeline after the rounds


@dataclass
class TokenPosts:
    """The create_post_token row's tokens: the file wrk's script reads them from, how many it holds,
    and one of them for the check request."""
    path: str
    count: int
    check_token: str


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0],
                                     epilog="Make variables: BENCH_POSTS, BENCH_USERS, BENCH_DURATION, "
                                            "BENCH_CONNECTIONS, BENCH_THREADS, BENCH_SYNC=1 (--sync-standby), BENCH_ARGS (anything else).")
    parser.add_argument("--posts", type=int, default=10_000, help="posts to seed (default 10000)")
    parser.add_argument("--users", type=int, default=1000, help="users to seed (default 1000)")
    parser.add_argument("--follows-per-user", type=int, default=20, help="follows to seed per user (default 20)")
    parser.add_argument("--reseed", action="store_true", help="seed again even if the same seed is there")
    parser.add_argument("--duration", default="10s", help="wrk -d per row (default 10s)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gunicorn workers (default: CPUs)")
    parser.add_argument("--only", default="", help="comma-separated row names to run (healthz and the floor's "
                        "always run, and so does each named row's target yardstick: create_post with "
                        "create_post_token)")
    parser.add_argument("--split-search", action="store_true", help="also one search row per word group")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between rows (default 1)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds over every row, alternating; the table shows medians (default 3)")
    parser.add_argument("--profile", action="store_true",
                        help="after the rounds, run each row once more under py-spy (installed if missing) and "
                             "show where its request threads spend their samples (not measured)")
    parser.add_argument("--sync-standby", action="store_true",
                        help="also measure POST while each commit waits for a synchronous standby, as under "
                             "Patroni's synchronous_mode (row create_post_sync): a streaming replica of the "
                             "local PostgreSQL is started (a base backup the first time), named in "
                             "synchronous_standby_names during that row only")
    parser.add_argument("--peer-url", default="", help="also measure GET on this URL of a service of your own "
                        "(a yardstick, e.g. the same feed page from another stack), as the last row")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"\d+[smh]?", args.duration):
        parser.error("--duration is a whole number of seconds, minutes or hours: 10s, 2m")
    if args.posts < 100 or args.users < 10:
        parser.error("seed at least 100 posts and 10 users")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.threads < 1 or args.connections < args.threads:
        parser.error("--connections must be at least --threads, and --threads at least 1")
    return args


def seconds(duration: str) -> int:
    number, unit = int(duration.rstrip("smh")), duration[-1]
    return number * {"m": 60, "h": 3600}.get(unit, 1)


def ensure_wrk(log_path: Path) -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        harness.fail("wrk is not installed: install it (Debian/Ubuntu: apt-get install wrk) or run as root")
    say(f"installing wrk with apt-get (log: {log_path})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(log_path, "a") as log:
        wait_lock = ["-o", "DPkg::Lock::Timeout=300"]  # another apt-get may be running
        for command in (["apt-get", *wait_lock, "update"],
                        ["apt-get", *wait_lock, "install", "-y", "--no-install-recommends", "wrk"]):
            if subprocess.run(command, check=False, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=900).returncode:
                harness.fail(f"{' '.join(command)} failed; see {log_path}")
    return shutil.which("wrk") or harness.fail("wrk was installed but is not on PATH")


def seed_vocabulary() -> list[str]:
    """The words db/seed/seed.sql draws seeded posts from (its `vocabulary` literal)."""
    found = re.search(r"string_to_array\(((?:\s*'[^']*')+),\s*' '\)", harness.SEED_FILE.read_text())
    if not found:
        harness.fail(f"no vocabulary found in {harness.SEED_FILE}")
    return "".join(re.findall(r"'([^']*)'", found.group(1))).split()


def lua_strings(items: list[str]) -> str:
    return ", ".join(json.dumps(item) for item in items)  # a JSON string is a valid Lua string here


def search_path(word: str) -> str:
    from urllib.parse import quote

    return f"/api/posts/search?keyword={quote(word, safe='')}"


def deep_page(base: str, pages: int, start: str = "/api/posts") -> tuple[str, int]:
    """Follow a feed's Link headers `pages` times from `start` (the global feed's first page):
    (that URL's path, pages followed)."""
    path, followed = start, 0
    for _ in range(pages):
        status, headers, _ = harness.http_get(base + path)
        if status != 200:
            harness.fail(f"GET {path} answered {status} while following the feed's Link headers")
        link = headers.get("Link", "")
        found = re.search(r'<([^>]+)>;\s*rel="next"', link)
        if not found:
            break
        path = urljoin(base + path, found.group(1)).removeprefix(base)
        followed += 1
    return path, followed


def following_path(reader: int) -> str:
    return f"/api/posts?followed_by={reader}"


def profile_user(low: int, high: int) -> int:
    """The seeded user whose profile and author feed are measured."""
    return low + PROFILE_OFFSET % (high - low + 1)


def rows_for(low: int, high: int, pages: Pages, split_search: bool, following: list[Following] | None = None,
             authors: list[Author] | None = None, threads: Threads | None = None,
             sync_standby: bool = False, token_posts: TokenPosts | None = None) -> list[Row]:
    profile = profile_user(low, high)
    words = [word for group in ("rare", "medium", "common") for word in KEYWORDS[group]]
    rows = [
        Row("floor_hello", "floor: a bare Bottle app's GET /hello", "/hello", base="floor"),
        Row("floor_feed", "floor: 10 newest posts, one prepared statement", "/feed", base="floor"),
        Row("healthz", "GET /healthz", "/healthz"),
        Row("feed_cached", "feed page 1, cached (GET /api/posts)", "/api/posts"),
        Row("feed_uncached", "feed page 1, uncached (?start_date=2000-01-01)", "/api/posts?start_date=2000-01-01"),
        Row("deep_page", f"feed page {DEEP_PAGES + 1} by cursor", pages.deep),
        Row("author_page2", "author feed page 2 by cursor", pages.author),
        Row("trending_page2", "trending feed page 2 by cursor", pages.trending),
        Row("search", "search, rare/medium/common words", search_path(words[0]),
            LUA_ROTATE % {"paths": lua_strings([search_path(w) for w in words])}),
        Row("search_short", "search, keywords without a trigram", search_path(SHORT_KEYWORDS[0]),
            LUA_ROTATE % {"paths": lua_strings([search_path(w) for w in SHORT_KEYWORDS])}),
    ]
    if split_search:
        rows += [Row(f"search_{group}", f"search, {group} words only", search_path(KEYWORDS[group][0]),
                     LUA_ROTATE % {"paths": lua_strings([search_path(w) for w in KEYWORDS[group]])})
                 for group in ("rare", "medium", "common")]
    rows += [
        Row("followed_by", "followed_by feed, random user", f"/api/posts?followed_by={low}",
            LUA_RANDOM_USER % {"low": low, "high": high, "template": "/api/posts?followed_by=%d"}),
    ]
    for reader in following or []:
        rows += [
            Row(f"following_{reader.count}", f"Following feed page 1, {reader.count:,} follows",
                following_path(reader.reader), nonempty=True),
            Row(f"following_{reader.count}_p{FOLLOWING_PAGE}",
                f"Following feed page {reader.pages_followed + 1} by cursor, {reader.count:,} follows",
                reader.deep, nonempty=True),
        ]
    if threads:
        rows += [
            Row("context_deep_root", "context: deep thread's root", f"/api/posts/{threads.deep_root}/context"),
            Row("context_deep_middle", "context: deep thread's middle", f"/api/posts/{threads.deep_middle}/context"),
            Row("context_deep_leaf", "context: deep thread's last reply", f"/api/posts/{threads.deep_leaf}/context"),
            Row("context_wide", "context: wide thread's root", f"/api/posts/{threads.wide_root}/context"),
            Row("replies_wide", "replies page 1 of the wide thread", f"/api/posts/{threads.wide_root}/replies"),
        ]
    post = post_script(low, high)
    rows += [
        Row("profile", f"profile (GET /api/users/{profile})", f"/api/users/{profile}"),
        Row("create_post", "POST /api/posts, random author", "/api/posts", post, method="POST",
            body={"user_id": low, "content": "bench check post"}, expect=201),
    ]
    if token_posts:
        rows.append(Row("create_post_token", f"POST /api/posts with a bearer token, random author of {token_posts.count:,}",
                        "/api/posts", post_script(low, high, token_posts.path),
                        method="POST", body={"content": "bench check post"},
                        headers={"Authorization": f"Bearer {token_posts.check_token}"}, expect=201))
    if sync_standby:
        rows.append(Row("create_post_sync", "POST /api/posts, each commit waiting for a synchronous standby",
                        "/api/posts", post, method="POST", body={"user_id": low, "content": "bench check post"},
                        expect=201, sync_standby=True))
    rows += [Row(f"post_fans_{author.fans}", f"POST /api/posts, one author, {author.fans:,} followers", "/api/posts",
                 post_script(author.author, author.author), method="POST",
                 body={"user_id": author.author, "content": "bench check post"}, expect=201)
             for author in authors or []]
    return rows


def give_timelines(base: str, readers: list[int]) -> int:
    """Reads each reader's Following feed once, so that each has a home timeline (a read without one
    builds it) for new posts to be pushed into. Returns how many reads failed."""
    from concurrent.futures import ThreadPoolExecutor

    def read(reader: int) -> bool:
        try:
            status, _, _ = harness.http_get(base + following_path(reader), timeout=30)
        except OSError:
            return False
        return status == 200

    with ThreadPoolExecutor(max_workers=TIMELINE_THREADS) as pool:
        return sum(not ok for ok in pool.map(read, readers))


def check(base: str, row: Row) -> str | None:
    """One request in Python first: a row whose request fails is reported, not measured."""
    import urllib.error
    import urllib.request

    data = json.dumps(row.body).encode() if row.body is not None else None
    request = urllib.request.Request(base + row.path, data=data, method=row.method,
                                     headers={"Content-Type": "application/json", **row.headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body, text = response.status, response.read(), ""
    except urllib.error.HTTPError as error:
        status, body = error.code, b""
        text = error.read()[:300].decode(errors="replace")
    except OSError as error:
        return f"request failed: {error}"
    if status != row.expect:
        return f"{row.method} {row.path} answered {status}, not {row.expect}: {text}"
    if row.nonempty:
        try:
            page = json.loads(body)
        except ValueError:
            return f"{row.method} {row.path} answered {status} with a body that is not JSON"
        if not isinstance(page, list) or not page:
            return f"{row.method} {row.path} answered {status} with an empty page: {body[:100].decode(errors='replace')}"
    return None


def machine_busy_seconds() -> float:
    """CPU time the whole machine has been busy since boot: user + nice + system + irq + softirq
    (idle, iowait and steal are not work done here; guest time is inside user already)."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(value) for value in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children (here: the wrk just waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(wrk: str, base: str, row: Row, args: argparse.Namespace, scripts: Path) -> dict:
    script = scripts / f"{row.name}.lua"
    script.write_text(LUA_REPORT + row.script)
    command = [wrk, "-t", str(args.threads), "-c", str(args.connections), "-d", args.duration,
               "--timeout", "10s", "-s", str(script), base + row.path]
    busy, wrk_cpu = machine_busy_seconds(), children_cpu_seconds()
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=seconds(args.duration) + 60)
    busy, wrk_cpu = machine_busy_seconds() - busy, children_cpu_seconds() - wrk_cpu
    found = re.search(r"^BENCH_JSON (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode or not found:
        return {"error": f"wrk exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"}
    result = json.loads(found.group(1))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6) if result["duration_us"] else 0.0
    result["machine_busy_s"], result["wrk_cpu_s"] = round(busy, 3), round(wrk_cpu, 3)
    result["cpu_ms_per_request"] = max(busy - wrk_cpu, 0) * 1000 / result["requests"] if result["requests"] else None
    result["command"] = " ".join(command[:-2] + [f"{row.name}.lua", command[-1]])
    return result


def profile_rows(wrk: str, rows: list[Row], base_of: dict[str, str], masters: dict[str, int],
                 args: argparse.Namespace, scripts: Path, out_dir: Path, waits_of) -> None:
    """Each row once more, under py-spy: its summary goes to row.result["profile"] (loadtests/profiling.py)."""
    py_spy = profiling.ensure_py_spy(harness.RESULTS / "install.log")
    out_dir.mkdir(parents=True, exist_ok=True)
    for number, row in enumerate(rows, 1):
        say(f"[profile {number}/{len(rows)}] {row.name}: wrk under py-spy (not measured)")
        pids = profiling.worker_pids(masters[row.base])
        samplers = profiling.record(py_spy, pids, max(seconds(args.duration) - 1, 1), out_dir, row.name)
        with waits_of(row):
            run_wrk(wrk, base_of[row.name], row, args, scripts)
        for sampler in samplers:
            sampler.wait(timeout=60)
        row.result["profile"] = profiling.summarize([out_dir / f"{row.name}-{pid}.txt" for pid in pids])


def profiles_text(rows: list[Row], top: int = 5) -> str:
    """Per profiled row, its request threads' top frames by self samples and the app's phases."""
    lines = []
    for row in rows:
        profile = row.result.get("profile")
        if not profile or not profile["samples"]:
            continue
        lines.append(f"{row.name} ({profile['samples']} samples)")
        for title, key in (("self", "self"), ("posterr, inclusive", "posterr")):
            entries = ", ".join(f"{entry['frame']} {entry['share']:.0%}" for entry in profile[key][:top])
            lines.append(f"  {title}: {entries or '-'}")
    return "\n".join(lines)


def combine(runs: list[dict]) -> dict:
    """A row's result over its rounds: the medians of req/s, CPU per request, p50 and p99; requests,
    errors and worker restarts added up; every run kept as it was."""
    measured = [run for run in runs if "rps" in run and run.get("cpu_ms_per_request") is not None]
    if not measured:
        return {**runs[-1], "runs": runs}
    combined = dict(measured[0])
    for key in ("rps", "cpu_ms_per_request", "p50_us", "p99_us"):
        combined[key] = statistics.median(run[key] for run in measured)
    for key in ("requests", "non_2xx_3xx", "connect_errors", "read_errors", "write_errors", "timeouts",
                "worker_restarts"):
        combined[key] = sum(run[key] for run in measured)
    combined["runs"] = runs
    return combined


def table(rows: list[Row]) -> str:
    healthz = next((r.result for r in rows if r.name == "healthz" and "rps" in r.result), None)
    header = ("request", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "CPU × healthz", "req/s × healthz",
              "not 2xx", "errors")
    lines = []
    for row in rows:
        r = row.result
        if "rps" not in r:
            lines.append((row.what, "-", "-", "-", "-", "-", "-", "-", r.get("error", "skipped")[:60]))
            continue
        cpu = r.get("cpu_ms_per_request")
        cpu_ratio = f"{cpu / healthz['cpu_ms_per_request']:.2f}" if healthz and cpu and healthz["cpu_ms_per_request"] else "-"
        rps_ratio = f"{r['rps'] / healthz['rps']:.2f}" if healthz and healthz["rps"] else "-"
        errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
        lines.append((row.what, f"{r['rps']:,.0f}", f"{r['p50_us'] / 1000:.2f}", f"{r['p99_us'] / 1000:.2f}",
                      f"{cpu:.3f}" if cpu is not None else "-", cpu_ratio, rps_ratio, str(r["non_2xx_3xx"]),
                      str(errors)))
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    out = []
    for i, line in enumerate([header, *lines]):
        out.append("  ".join(str(cell).ljust(widths[0]) if n == 0 else str(cell).rjust(widths[n])
                             for n, cell in enumerate(line)))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# The performance targets, each a row's CPU per request against another row's in the same run: (what,
# row, yardstick row, the most the ratio may be). Rows left out of a run leave their targets out.
PAGED_ROWS = ("deep_page", "author_page2", "trending_page2")
UNCACHED_PAGES = ("feed_uncached", "deep_page", "author_page2", "trending_page2",
                  *(f"following_{n}_p{FOLLOWING_PAGE}" for n in FOLLOWING))
CPU_TARGETS = [
    ("the edge: /healthz against a bare app's /hello", "healthz", "floor_hello", 1.3),
    ("cached first page against /healthz", "feed_cached", "healthz", 1.4),
    ("cached profile against /healthz", "profile", "healthz", 1.4),
    *((f"uncached page {name} against the floor's one-statement page", name, "floor_feed", 1.3)
      for name in UNCACHED_PAGES),
    ("POST /api/posts against /healthz", "create_post", "healthz", 4.0),
    ("POST /api/posts with a bearer token against without (issue 32)", "create_post_token", "create_post", 1.10),
    # Issue 34: at most 10% above its cost before search segments, 16.9 times the floor's /hello then
    # (docs/performance.md, "Search in time segments"); a shared machine moves this ratio by more.
    ("POST /api/posts against the floor's /hello, 10% over before segments", "create_post", "floor_hello", 18.6),
    ("a post pushed to 1,000 timelines against one pushed to 10", "post_fans_1000", "post_fans_10", 2.0),
]
# Keyword search latency at the bench's concurrency, of the mix and of each group of words (issue
# 34): (what, the result's key, the most in ms).
SEARCH_TARGETS = [("p50", "p50_us", 50), ("p99", "p99_us", 200)]
SEARCH_ROWS = ("search", *SPLIT_SEARCH)


def with_yardsticks(only: set[str]) -> set[str]:
    """The rows --only names and the yardsticks of their targets (create_post with
    create_post_token, …), so that each target they have is measured; empty: every row."""
    return only | {yardstick for _what, name, yardstick, _most in CPU_TARGETS if name in only}


def round_ratio(row: dict, yardstick: dict) -> float:
    """The median over the rounds of the row's CPU per request against the yardstick's in the same
    round: rounds minutes apart can differ by 2x on a shared machine, the rows of one round far less."""
    pairs = [(mine["cpu_ms_per_request"], theirs["cpu_ms_per_request"])
             for mine, theirs in zip(row.get("runs", []), yardstick.get("runs", []))
             if mine.get("cpu_ms_per_request") and theirs.get("cpu_ms_per_request")]
    if not pairs:
        return row["cpu_ms_per_request"] / yardstick["cpu_ms_per_request"]
    return statistics.median(mine / theirs for mine, theirs in pairs)


def targets(rows: list[Row]) -> list[dict]:
    """Each target this run could measure, with its figure and whether it held."""
    measured = {row.name: row.result for row in rows if row.result.get("cpu_ms_per_request")}
    found = []
    for what, name, yardstick, most in CPU_TARGETS:
        if name in measured and yardstick in measured:
            ratio = round_ratio(measured[name], measured[yardstick])
            found.append({"target": f"{what}: CPU {name} / {yardstick} <= {most}", "value": round(ratio, 3),
                          "limit": most, "held": ratio <= most})
    for name in (name for name in SEARCH_ROWS if name in measured):
        for what, key, most in SEARCH_TARGETS:
            value = measured[name][key] / 1000
            found.append({"target": f"{name} {what} <= {most} ms", "value": round(value, 1), "limit": most,
                          "held": value <= most})
    return found


def targets_table(found: list[dict]) -> str:
    width = max((len(target["target"]) for target in found), default=0)
    return "\n".join(f"{target['target'].ljust(width)}  {target['value']:>8}  "
                     f"{'held' if target['held'] else 'NOT held'}" for target in found)


def git_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=harness.ROOT,
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], check=False,
                               cwd=harness.ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        return done.stdout.strip() + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    args.split_search = args.split_search or bool(only & set(SPLIT_SEARCH))  # a search_<group> named in --only
    names = [row.name for row in rows_for(1, 2, Pages("/", "/", "/"), args.split_search, [Following(n, 1) for n in FOLLOWING],
                                          [Author(n, 1) for n in FANS], Threads(1, 1, 1, 1), args.sync_standby,
                                          TokenPosts("", 1, ""))]
    if only - set(names):
        harness.fail(f"--only: no row named {', '.join(sorted(only - set(names)))} (rows: {', '.join(names)})")
    only = with_yardsticks(only)
    harness.stop_on_sigterm()
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = harness.timestamp()
    wrk = ensure_wrk(harness.RESULTS / "install.log")
    bench_db, bench_redis, low, high = harness.prepare_data(users=args.users, posts=args.posts,
                                                            follows=args.follows_per_user, reseed=args.reseed,
                                                            readers=FOLLOWING, fans=FANS)
    made = harness.find_readers(bench_db, FOLLOWING)
    following = [Following(n, made[n][0]) for n in FOLLOWING if made.get(n, (0, 0))[1] == n]
    left_out = {n: f"following_{n}, following_{n}_p{FOLLOWING_PAGE}: not measured, the reader needs {n:,} "
                   f"seeded users besides itself and the seed has {high - low + 1:,} (BENCH_USERS={n} or more)"
                for n in FOLLOWING if made.get(n, (0, 0))[1] != n}
    found = harness.find_fans(bench_db, FANS)
    authors = [Author(n, found[n][0]) for n in FANS if found.get(n, (0, 0))[1] == n]
    fans_left_out = [f"post_fans_{n}: not measured, user author{n} has {found.get(n, (0, 0))[1]:,} followers, "
                     f"not {n:,} (see db/seed/fans.sql)" for n in FANS if found.get(n, (0, 0))[1] != n]
    token_users = bulk_tokens.spread(low, high, bulk_tokens.MOST) if not only or "create_post_token" in only else []
    if token_users:
        started = time.monotonic()
        issued = bulk_tokens.issue(bench_db, token_users, "bench")
        say(f"issued {len(issued):,} tokens to seeded users in {time.monotonic() - started:.1f}s (create_post_token)")
    found_threads = harness.find_threads(bench_db)
    threads = Threads(*found_threads) if found_threads else None
    threads_left_out = [] if threads else [
        "context_*, replies_wide: not measured, the seed has no threads (seeded before db/seed/seed.sql made them)"]
    for note in [*left_out.values(), *fans_left_out, *threads_left_out]:
        say(f"warning: {note}")
    standby = harness.SyncStandby(bench_db, harness.RESULTS / f"bench-{stamp}-replica.log") if args.sync_standby else None
    if standby:
        standby.start()

    def waits_of(row: Row) -> contextlib.AbstractContextManager:
        return standby.waited_for() if standby and row.sync_standby else contextlib.nullcontext()

    load_before = os.getloadavg()
    if load_before[0] > (os.cpu_count() or 1) / 2:
        say(f"warning: the machine is busy already (load average {load_before[0]:.1f} on {os.cpu_count()} CPUs): "
            "the numbers will be low and noisy")

    # The rate limit is on, as in production, at a rate no run reaches: its Redis call is paid by every
    # /api request, and is part of what is measured. Legacy mode, so that create_post and post_fans_N
    # still measure v1.1's POST (user_id in the body, no token) while create_post_token is served by
    # the same app in the same run: a request with a token is checked exactly as in required mode.
    app = harness.App(bench_db, bench_redis, harness.RESULTS / f"bench-{stamp}-gunicorn.log",
                      daily_post_limit=1_000_000, workers=args.workers,
                      extra_env={"POSTERR_RATE_LIMIT": "1000000000/minute", "POSTERR_AUTH": "legacy"})
    from posterr.config import Settings

    settings = Settings.from_env(app.env)  # what the app will read: the fan-out limit, the timelines' TTL
    timelines: list[int] = []  # the readers given a home timeline for the post_fans rows
    timelines_built = 0.0  # when (time.monotonic()) they were last given one
    floor = harness.Floor(bench_db, harness.RESULTS / f"bench-{stamp}-floor.log", workers=args.workers,
                          threads=settings.threads)
    with app, floor, tempfile.TemporaryDirectory(prefix="posterr-bench-") as scripts:
        token_posts = None
        if token_users:
            path = bulk_tokens.write_private(Path(scripts) / "tokens.txt", issued)
            token_posts = TokenPosts(str(path), len(issued), issued[0])
        # Only for the rows that read them: at 10M posts the walk of 50 feed pages may outlast its
        # timeout on a busy machine (docs/performance.md, "Keywords without a trigram").
        paged = not only or bool(only & set(PAGED_ROWS))
        deep, followed = deep_page(app.base, DEEP_PAGES) if paged else ("/", DEEP_PAGES)
        pages = Pages(deep, deep_page(app.base, 1, f"/api/posts?author_id={profile_user(low, high)}")[0],
                      deep_page(app.base, 1, "/api/posts?sort_by=trending")[0]) if paged else Pages("/", "/", "/")
        if followed < DEEP_PAGES:
            say(f"warning: the feed has only {followed + 1} pages; the deep page is page {followed + 1}")
        for reader in following:
            if only and not only & {f"following_{reader.count}", f"following_{reader.count}_p{FOLLOWING_PAGE}"}:
                continue
            reader.deep, reader.pages_followed = deep_page(app.base, FOLLOWING_PAGE - 1, following_path(reader.reader))
            if reader.pages_followed < FOLLOWING_PAGE - 1:
                say(f"warning: the Following feed of {reader.count} follows has only {reader.pages_followed + 1} "
                    f"pages; following_{reader.count}_p{FOLLOWING_PAGE} measures page {reader.pages_followed + 1}")
        for author in authors:  # the authors whose posts are pushed: their followers get timelines
            if author.fans <= settings.fanout_max_followers and (not only or f"post_fans_{author.fans}" in only):
                author.timelines = harness.follower_ids(bench_db, author.author)
        timelines = sorted({reader for author in authors for reader in author.timelines})
        if timelines:
            started = time.monotonic()
            failed = give_timelines(app.base, timelines)
            timelines_built = time.monotonic()
            say(f"gave {len(timelines) - failed:,} of {len(timelines):,} followers a home timeline in "
                f"{timelines_built - started:.1f}s")
            if failed:
                say(f"warning: {failed} followers' Following feeds did not answer 200: their authors' rows "
                    "push into fewer timelines than they have followers")
        rows = [row for row in rows_for(low, high, pages, args.split_search, following, authors, threads,
                                        args.sync_standby, token_posts)
                if not only or row.name in only or row.name in ALWAYS]
        fanned = {f"post_fans_{author.fans}" for author in authors if author.timelines}
        if args.peer_url:
            rows.append(Row("peer", f"peer: GET {args.peer_url}", args.peer_url, base="peer"))
        base_of = {row.name: {"app": app.base, "floor": floor.base, "peer": ""}[row.base] for row in rows}
        for row in rows:
            with waits_of(row):
                problem = check(base_of[row.name], row)
            if problem:
                say(f"{row.name}: skipped, {problem}")
                row.result = {"error": problem}
        measured = [row for row in rows if "error" not in row.result]
        runs: dict[str, list[dict]] = {row.name: [] for row in measured}
        # Rounds alternate the rows, so a minute in which the machine is slow weighs on every row.
        deeper = {f"following_{reader.count}_p{FOLLOWING_PAGE}": reader for reader in following}
        for round_number in range(1, args.rounds + 1):
            for number, row in enumerate(measured, 1):
                if row.name in deeper and round_number > 1:
                    # The bench's posts are pushed into the readers' timelines: "page 20" is followed
                    # again from page 1, or it would drift past the timeline's end round by round.
                    reader = deeper[row.name]
                    reader.deep, reader.pages_followed = deep_page(app.base, FOLLOWING_PAGE - 1,
                                                                   following_path(reader.reader))
                    row.path = reader.deep
                say(f"[round {round_number}/{args.rounds}, {number}/{len(measured)}] {row.name}: "
                    f"wrk -t{args.threads} -c{args.connections} -d{args.duration} {row.what}")
                if row.name in fanned and time.monotonic() - timelines_built + seconds(args.duration) + 30 \
                        > settings.timeline_ttl:  # they would expire during the row: build them afresh
                    harness.forget_cached(bench_redis, timelines_of=timelines)
                    failed = give_timelines(app.base, timelines)
                    timelines_built = time.monotonic()
                    say(f"    rebuilt the home timelines of {len(timelines) - failed:,} of {len(timelines):,} "
                        f"followers (older than POSTERR_TIMELINE_TTL={settings.timeline_ttl} s by the row's end)")
                offset = app.log_size()
                with waits_of(row):
                    run = run_wrk(wrk, base_of[row.name], row, args, Path(scripts))
                run["worker_restarts"] = app.worker_boots_since(offset)
                runs[row.name].append(run)
                if "rps" in run:
                    say(f"    {run['rps']:,.0f} req/s, {run['cpu_ms_per_request'] or 0:.3f} CPU ms/request, "
                        f"p50 {run['p50_us'] / 1000:.2f} ms, p99 {run['p99_us'] / 1000:.2f} ms"
                        + (f", {run['non_2xx_3xx']} not 2xx/3xx" if run["non_2xx_3xx"] else ""))
                else:
                    say(f"    {run['error']}")
                time.sleep(args.pause)
        for row in measured:
            row.result = combine(runs[row.name])
        if args.profile:
            masters = {"app": app.process.pid, "floor": floor.process.pid}
            profile_rows(wrk, [row for row in measured if row.base in masters], base_of, masters, args,
                         Path(scripts), harness.RESULTS / f"bench-{stamp}-profiles", waits_of)
        for author in authors:  # a sanity check: the pushes landed (the measured work was done)
            if f"post_fans_{author.fans}" in runs and author.timelines:
                sizes = harness.timeline_sizes(bench_redis, author.timelines)
                author.pushed = sum(1 for size in sizes.values() if size)
                if author.pushed < len(author.timelines):
                    say(f"warning: post_fans_{author.fans}: only {author.pushed:,} of the {len(author.timelines):,} "
                        "followers given a timeline have posts in it after the rows: the posts were not pushed "
                        "to all of them")

    report = {
        "timestamp": stamp, "commit": git_commit(), "cpus": os.cpu_count(), "gunicorn_workers": args.workers,
        "wrk": {"threads": args.threads, "connections": args.connections, "duration": args.duration},
        "sync_standby": args.sync_standby,
        "seed": {"users": args.users, "posts": args.posts, "follows_per_user": args.follows_per_user},
        "keywords": KEYWORDS, "deep_page": {"pages_followed": followed, "path": deep},
        "following": [{"follows": r.count, "reader_id": r.reader, "first_page": following_path(r.reader),
                       "pages_followed": r.pages_followed, "deep_path": r.deep} for r in following],
        "fans": [{"followers": a.fans, "author_id": a.author, "followers_given_timelines": len(a.timelines),
                  "timelines_with_posts_after": a.pushed} for a in authors],
        "following_left_out": list(left_out.values()), "fans_left_out": fans_left_out,
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "app_log": str(app.log_path.relative_to(harness.ROOT)),
        "rows": [{"name": r.name, "request": r.what, "method": r.method, "path": r.path, **r.result} for r in rows],
        "targets": targets(rows),
    }
    out = harness.RESULTS / f"bench-{stamp}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nposterr bench {stamp} ({report['commit']}): {args.posts} posts, {args.users} users; "
          f"wrk -t{args.threads} -c{args.connections} -d{args.duration}; gunicorn {args.workers} workers "
          f"on {os.cpu_count()} CPUs; load average {report['load_average']['before']:.1f} before, "
          f"{report['load_average']['after']:.1f} after\n")
    print(table(rows))
    if args.profile:
        print("\nprofiles (py-spy, request threads; socket calls are round trips, not Python work):\n")
        print(profiles_text(rows))
    if report["targets"]:
        print(f"\ntargets ({sum(t['held'] for t in report['targets'])} of {len(report['targets'])} held):\n")
        print(targets_table(report["targets"]))
    for note in [*left_out.values(), *fans_left_out, *threads_left_out]:
        print(f"\n{note}")
    restarts = sum(r.result.get("worker_restarts", 0) for r in rows)
    if restarts:
        print(f"\ngunicorn replaced workers {restarts} times during the measurements (max_requests recycling; "
              "see the JSON per row)")
    print(f"\nresults: {out.relative_to(harness.ROOT)}")
    failed = [r.name for r in rows if "rps" not in r.result]
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
