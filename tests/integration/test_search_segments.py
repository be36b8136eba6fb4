"""post_search's segments (db/migrations/20261208100000_add_post_search_segments.sql): every post but a
repost is copied there by a trigger; the open segment is sealed in place once it holds a segment's
worth, or cut into several by a bulk load's seal; a post of any age has a segment; TRUNCATE posts
empties them all. What the app answers from them is tests/integration/test_search_equivalence.py's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from posterr.services.search import seal_segments
from tests.integration.test_post_service import started_context

START = datetime(2026, 6, 1, tzinfo=UTC)


def _posts(sql, count: int, first_minute: int = 0) -> None:
    """`count` posts a minute apart from START + first_minute."""
    sql.execute("INSERT INTO users (username) VALUES ('segments') ON CONFLICT DO NOTHING")
    sql.execute("INSERT INTO posts (user_id, type, content, created_at) "
                "SELECT u.id, 'post', 'post ' || g, %s + g * interval '1 minute' "
                "FROM users u, generate_series(%s::int, %s::int) g WHERE u.username = 'segments'",
                (START, first_minute + 1, first_minute + count))


def _segments(sql) -> list[tuple]:
    """(starts_at, ends_at, posts) of each, oldest first; the oldest starts at -infinity, read as None."""
    return sql.execute("SELECT nullif(starts_at, '-infinity'), ends_at, posts FROM search_segments "
                       "ORDER BY search_segments.starts_at").fetchall()


def _where(sql) -> dict[str, int]:
    return dict(sql.execute("SELECT tableoid::regclass::text, count(*) FROM post_search GROUP BY 1").fetchall())


def test_every_post_but_a_repost_is_searchable(sql):
    _posts(sql, 50)
    sql.execute("INSERT INTO posts (user_id, type, repost_id) SELECT user_id, 'repost', id FROM posts WHERE id <= 5")
    assert sql.execute("SELECT count(*) FROM post_search").fetchone()[0] == 50


def test_a_seal_waits_for_a_segments_worth_then_seals_the_open_segment_in_place(sql):
    _posts(sql, 100)
    assert sql.execute("SELECT seal_search_segments(1000)").fetchone()[0] == 0
    _posts(sql, 1_500, first_minute=100)
    assert sql.execute("SELECT seal_search_segments(1000)").fetchone()[0] == 1
    ((starts, ends, posts),) = _segments(sql)
    assert (starts, ends, posts) == (None, START + timedelta(minutes=1_600, microseconds=1), 1_600)
    assert _where(sql) == {"post_search_1": 1_600}
    # A later post goes to the open segment; an older one, however old, to the segment of its time.
    _posts(sql, 10, first_minute=1_600)
    sql.execute("INSERT INTO posts (user_id, type, content, created_at) "
                "SELECT id, 'post', 'ancient', '1990-01-01' FROM users WHERE username = 'segments'")
    assert _where(sql) == {"post_search_1": 1_601, "post_search_open": 10}
    indexes = dict(sql.execute("SELECT c.relname, c.reloptions FROM pg_class c "
                               "WHERE c.relname LIKE 'post\\_search\\_%%content_idx'").fetchall())
    assert indexes == {"post_search_1_content_idx": ["fastupdate=off"], "post_search_open_content_idx": None}


def test_a_bulk_seal_cuts_the_open_segment_into_segments_in_time_order(sql):
    _posts(sql, 5_000)
    assert sql.execute("SELECT seal_search_segments(1000, split => true)").fetchone()[0] == 5
    segments = _segments(sql)
    assert [posts for _, _, posts in segments] == [999, 1_000, 1_000, 1_000, 1_001]
    assert all(earlier[1] == later[0] for earlier, later in pairwise(segments))  # no gap, no overlap
    assert sum(_where(sql).values()) == 5_000


def test_truncating_posts_empties_the_segments(sql):
    _posts(sql, 3_000)
    sql.execute("SELECT seal_search_segments(1000, split => true)")
    sql.execute("TRUNCATE posts CASCADE")
    assert _segments(sql) == [] and _where(sql) == {}
    assert sql.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'post_search'::regclass").fetchone()[0] == 1


def test_the_apps_job_seals_a_segment_of_the_schemas_size(servers, sql):
    with started_context(servers) as context:
        _posts(sql, 100)
        assert seal_segments(context.db) == 0
        _posts(sql, 99_900, first_minute=100)
        assert seal_segments(context.db) == 1
    assert [posts for _, _, posts in _segments(sql)] == [100_000]
