"""`python -m posterr cache stats` (posterr/cli/cache.py), its pure parts: the app's metrics read
into per-family figures, ratios and rates, and the table."""

from __future__ import annotations

import argparse
from datetime import datetime

import pytest

from posterr.cli.cache import (
    STATS_EPILOG,
    AppFigures,
    Keys,
    Lookups,
    Snapshot,
    app_figures,
    estimated_memory,
    frame,
    hit_ratio,
    human_bytes,
    metrics_url,
    positive,
    rates,
)
from posterr.config import Settings
from posterr.keys import KEY_FAMILIES

METRICS = """\
# HELP posterr_cache_lookups_total Document cache lookups by key family
# TYPE posterr_cache_lookups_total counter
posterr_cache_lookups_total{family="feeds",result="hit"} 8.0
posterr_cache_lookups_total{family="feeds",result="miss"} 2.0
posterr_cache_lookups_total{family="users",result="hit"} 1.0
posterr_cache_lookups_total{family="users",result="miss"} 3.0
# HELP posterr_timeline_reads_total Pages of the Following feed
# TYPE posterr_timeline_reads_total counter
posterr_timeline_reads_total{source="hit"} 5.0
posterr_timeline_reads_total{source="built"} 1.0
posterr_timeline_reads_total{source="pulled"} 4.0
# HELP posterr_limit_refusals_total Requests refused by a limit
# TYPE posterr_limit_refusals_total counter
posterr_limit_refusals_total{limit="daily_posts"} 6.0
# HELP posterr_http_requests_total HTTP requests
# TYPE posterr_http_requests_total counter
posterr_http_requests_total{method="GET",route="/metrics",status="200"} 9.0
"""


@pytest.mark.parametrize("family, hits, misses", [
    ("feeds", 8, 2),
    ("users", 1, 3),
    ("posts", 0, 0),  # no sample yet: nothing looked up
    ("timelines", 5, 1),  # a hit read a home timeline, a miss (built) rebuilt one
])
def test_metrics_give_each_lookup_familys_hits_and_misses(family, hits, misses):
    assert app_figures(METRICS).lookups[family] == Lookups(hits, misses)


def test_metrics_give_pulled_pages_and_refusals_apart_from_lookups():
    figures = app_figures(METRICS)
    assert figures.pulled == 4
    assert figures.refusals == {"daily_posts": 6, "client_rate": 0}


@pytest.mark.parametrize("text", [
    "",
    'posterr_cache_lookups_total{result="hit"} 3.0\n',  # an app from before the family label
    "<html>not metrics</html>",
])
def test_text_without_lookups_by_family_is_refused(text):
    with pytest.raises(ValueError):
        app_figures(text)


@pytest.mark.parametrize("lookups, ratio", [
    (Lookups(0, 0), None),
    (Lookups(3, 1), 0.75),
    (Lookups(0, 5), 0.0),
    (Lookups(7, 0), 1.0),
])
def test_hit_ratio(lookups, ratio):
    assert hit_ratio(lookups) == ratio


@pytest.mark.parametrize("before, after, seconds, expected", [
    (Lookups(10, 4), Lookups(30, 8), 2.0, Lookups(10, 2)),
    (Lookups(10, 4), Lookups(10, 4), 0.5, Lookups(0, 0)),
    (Lookups(100, 40), Lookups(6, 3), 3.0, Lookups(2, 1)),  # reset (the app restarted): all of it is new
])
def test_rates_per_second_between_two_readings(before, after, seconds, expected):
    assert rates(before, after, seconds) == expected


@pytest.mark.parametrize("sizes, count, expected", [
    ([], 0, 0),
    ([100, 300], 2, 400),  # every key sampled: the exact sum
    ([100, 300], 1000, 200_000),  # scaled to the count
    ([], 5, 0),  # every sampled key expired meanwhile
])
def test_memory_is_the_sample_scaled_to_the_key_count(sizes, count, expected):
    assert estimated_memory(sizes, count) == expected


@pytest.mark.parametrize("size, shown", [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (5 * 2**20, "5.0 MiB"),
    (3 * 2**30, "3.0 GiB"), (2**50, "1024.0 TiB"),
])
def test_human_bytes(size, shown):
    assert human_bytes(size) == shown


@pytest.mark.parametrize("host, url", [
    ("0.0.0.0", "http://127.0.0.1:5123/metrics"),  # listening on every address: ask the local one
    ("[::]", "http://[::1]:5123/metrics"),
    ("10.0.0.7", "http://10.0.0.7:5123/metrics"),
    ("app.internal", "http://app.internal:5123/metrics"),
])
def test_the_metrics_url_follows_the_apps_host_and_port(host, url):
    settings = Settings(database_url="postgres://db/posterr", redis_url="redis://cache/0", host=host, port=5123)
    assert metrics_url(settings) == url


@pytest.mark.parametrize("parse, text", [(positive(float), "0"), (positive(float), "-1"), (positive(int), "0.5")])
def test_watch_and_frames_take_positive_numbers(parse, text):
    with pytest.raises((argparse.ArgumentTypeError, ValueError)):
        parse(text)


# --- the table ----------------------------------------------------------------------------------

KEYS = {family.name: Keys(0, 0, False) for family in KEY_FAMILIES} | {
    "users": Keys(2, 560, False), "feeds": Keys(1000, 2 * 2**20, True), "quota": Keys(1, 72, False)}


def snapshot(app: AppFigures | None, taken: float = 100.0) -> Snapshot:
    return Snapshot(KEYS, "1.50M  peak 2.00M", app, None if app else "http://127.0.0.1:9/metrics could not be "
                    "reached ([Errno 111] Connection refused)", taken, datetime(2026, 11, 30, 12, 0, 0))


def row(lines: list[str], family: str) -> list[str]:
    return next(line.split() for line in lines if line.split()[0] == family)


@pytest.mark.parametrize("family, cells", [
    ("feeds", ["feeds", "1000", "~2.0", "MiB", "8", "2", "80.0%", "posterr:{feeds}:*"]),
    ("users", ["users", "2", "560", "B", "1", "3", "25.0%", "posterr:user:*"]),
    ("posts", ["posts", "0", "0", "B", "0", "0", "—", "posterr:post:*"]),  # no lookup yet: no ratio
    ("timelines", ["timelines", "0", "0", "B", "5", "1", "83.3%", "posterr:timeline:*"]),
    ("quota", ["quota", "1", "72", "B", "—", "—", "—", "posterr:quota:*"]),  # not a cache
    ("total", ["total", "1003", "~2.0", "MiB", "14", "6", "70.0%"]),
])
def test_one_row_per_family_and_a_total(family, cells):
    assert row(frame(snapshot(app_figures(METRICS)), None, watching=False), family) == cells


def test_every_family_has_a_row_and_is_explained_in_the_help():
    lines = frame(snapshot(app_figures(METRICS)), None, watching=False)
    explained = STATS_EPILOG.partition("families:")[2].replace(",", " ").split()
    for family in KEY_FAMILIES:
        assert row(lines, family.name)[-1] == family.pattern
        assert family.name in explained, family.name


def test_the_frame_says_memory_is_sampled_and_what_the_other_families_did():
    lines = frame(snapshot(app_figures(METRICS)), None, watching=False)
    assert "hit ratio" in lines[1] and "hits/s" not in lines[1]
    assert "sampled" in lines[-4]
    assert lines[-3:] == [
        "timelines: 4 more pages read from PostgreSQL alone (Redis unavailable, or past the end)",
        "quota: 6 refusals of the daily limit (by the Redis counter or PostgreSQL, not told apart)",
        "rate_limit: 0 refusals, all decided in Redis"]


def test_without_the_app_the_redis_figures_stay_and_one_line_says_why():
    lines = frame(snapshot(None), None, watching=False)
    assert lines[1] == ("hits and misses unavailable: http://127.0.0.1:9/metrics could not be reached "
                        "([Errno 111] Connection refused)")
    assert row(lines, "users") == ["users", "2", "560", "B", "?", "?", "?", "posterr:user:*"]
    assert row(lines, "quota")[4:7] == ["—", "—", "—"]
    assert lines[-1].startswith("memory: ")


def test_a_watch_frame_shows_rates_since_the_previous_one():
    first = snapshot(app_figures(METRICS), taken=100.0)
    later = app_figures(METRICS.replace('family="users",result="hit"} 1.0', 'family="users",result="hit"} 9.0'))
    lines = frame(snapshot(later, taken=102.0), first, watching=True)
    assert lines[1] == "per second over the last 2.0 s"
    assert "hits/s" in lines[2] and "misses/s" in lines[2]
    assert row(lines, "users")[4:9] == ["9", "3", "4.0", "0.0", "75.0%"]
    assert row(lines, "total")[4:7] == ["22", "6", "4.0"]


def test_the_first_watch_frame_has_no_rates_yet():
    lines = frame(snapshot(app_figures(METRICS)), None, watching=True)
    assert lines[1] == "per second: from the next frame on"
    assert row(lines, "feeds")[4:8] == ["8", "2", "?", "?"]
