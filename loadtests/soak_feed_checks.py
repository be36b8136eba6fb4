"""The soak checkpoints' read-your-writes checks, on nginx and every instance: each acknowledged post
in its author's Posts and Replies feed, each acknowledged reply among its parent's replies, the
Following feeds (home timelines) and the global feed's first page. What the reads show is judged by
loadtests/soak_rules.py.
"""

from __future__ import annotations

import time

import psycopg
import requests

from loadtests import soak_rules as rules
from loadtests.soak_load import MAX_PAGES, next_page
from loadtests.soak_state import AckPost

GLOBAL_PAGE = 100


class FeedChecks:
    """Mixed into loadtests/soak_checks.py's Checker: these use its ledger, verdict and bases, and
    its read, each, connect and spread."""

    def author_feeds(self, posts: list[AckPost]) -> int:
        """Every acknowledged post of each sampled author is in that author's Posts and Replies feed
        on every base."""
        authors = sorted({post.user_id for post in posts})
        self.each([(author, base) for author in authors for base in self.bases], self.author_feed)
        return len(authors)

    def author_feed(self, job: tuple[int, str]) -> None:
        author, base = job
        asked = time.monotonic()
        expected = rules.acknowledged_before(self.ledger.by_author[author], asked)
        found: set[int] = set()
        url: str | None = f"{base}/api/posts?author_id={author}&include_replies=true&limit=100"
        for _ in range(MAX_PAGES):
            # As the author's own client: its posts were acknowledged to it (with read replicas,
            # another client may be shown a page up to POSTERR_REPLICA_MAX_LAG old).
            response = self.read(url, "check: GET /api/posts?author_id&include_replies", self.ledger.clients.get(author))
            if response is None or response.status_code != 200:
                rules.unreadable(self.verdict, "author feed", url, status_of(response))
                return
            rules.no_repeats(self.verdict, response.json(), f"user {author}'s feed on {base}")
            found |= {p["id"] for p in response.json()}
            if expected <= found or not (url := next_page(response)):
                break
        rules.author_feed(self.verdict, author, base, expected, found)

    def threads(self, posts: list[AckPost]) -> None:
        """Each acknowledged reply is among its parent's replies, on any base, as its author reads."""
        def check(numbered: tuple[int, AckPost]) -> None:
            index, post = numbered
            found: set[int] = set()
            url: str | None = f"{self.spread(index)}/api/posts/{post.reply_to_id}/replies?limit=100"
            for _ in range(MAX_PAGES):
                response = self.read(url, "check: GET /api/posts/{id}/replies", self.ledger.clients.get(post.user_id))
                if response is None or response.status_code != 200:
                    rules.unreadable(self.verdict, "replies", url, status_of(response))
                    return
                found |= {p["id"] for p in response.json()}
                if post.id in found or not (url := next_page(response)):
                    break
            rules.reply_listed(self.verdict, post, found)

        self.each(enumerate(post for post in posts if post.type == "reply"), check)

    def following_feeds(self, readers: list[int]) -> int:
        """Each reader's Following feed (its home timeline) on every base shows only posts of accounts
        it follows, and every acknowledged post of theirs newer than the page's last entry; readers
        whose follows changed while we looked are left for the next checkpoint."""
        self.each([(reader, base) for reader in readers for base in self.bases], self.following_feed)
        return len(readers)

    def following_feed(self, job: tuple[int, str]) -> None:
        reader, base = job
        with self.connect() as conn:
            if conn is None:
                return
            followees = self.followees(conn, reader)
            asked = time.monotonic()
            url = f"{base}/api/posts?followed_by={reader}&limit={GLOBAL_PAGE}"
            response = self.read(url, "check: GET /api/posts?followed_by")
            if followees != self.followees(conn, reader):
                return
        if response is None or response.status_code != 200:
            rules.unreadable(self.verdict, "Following feed", url, status_of(response))
            return
        rules.following_feed(self.verdict, reader, base, response.json(), next_page(response) is not None,
                             GLOBAL_PAGE, followees, self.ledger.by_author, asked)

    @staticmethod
    def followees(conn: psycopg.Connection, reader: int) -> set[int]:
        return {row[0] for row in conn.execute("SELECT followee_id FROM follows WHERE follower_id = %s", (reader,))}

    def global_feeds(self) -> None:
        """The first page of the global feed on every base holds every acknowledged post newer than
        the page's last one (older ones have legitimately moved on)."""
        def check(base: str) -> None:
            asked = time.monotonic()
            url = f"{base}/api/posts?limit={GLOBAL_PAGE}"
            response = self.read(url, "check: GET /api/posts?limit=100")
            if response is None or response.status_code != 200:
                rules.unreadable(self.verdict, "global feed", url, status_of(response))
                return
            rules.global_feed(self.verdict, base, response.json(), GLOBAL_PAGE, list(self.ledger.posts.values()), asked)

        self.each(self.bases, check)


def status_of(response: requests.Response | None) -> int | None:
    return None if response is None else response.status_code
