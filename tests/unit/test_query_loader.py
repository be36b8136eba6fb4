from __future__ import annotations

import pytest

from posterr.db import QUERIES_DIR, QueryFileError, load_queries


def write(tmp_path, name, text):
    (tmp_path / name).write_text(text)


def test_every_project_query_loads_with_its_index_note():
    queries = load_queries(QUERIES_DIR)
    assert {"insert_user", "user_by_id", "page_latest", "insert_post"} <= queries.keys()
    assert all(query.index for query in queries.values())


def test_blocks_are_split_by_name_with_kind_and_index(tmp_path):
    write(tmp_path, "a.sql", "-- name: one_thing :one\n-- Index: things_pkey.\nSELECT 1;\n\n"
                             "-- name: all_things :many\n-- Index: none\nSELECT 2\n")
    queries = load_queries(tmp_path)
    assert queries["one_thing"].kind == "one" and queries["one_thing"].sql == "SELECT 1"
    assert queries["all_things"].index == "none"


@pytest.mark.parametrize("text, message", [
    ("-- name: Bad-Name :one\n-- Index: x\nSELECT 1", "expected"),
    ("-- name: q :maybe\n-- Index: x\nSELECT 1", "expected"),
    ("SELECT 1;\n-- name: q :one\n-- Index: x\nSELECT 1", "before the first"),
    ("-- name: q :one\n-- Index: x\n", "no SQL"),
    ("-- name: q :one\nSELECT 1", "index"),
])
def test_malformed_files_stop_the_start(tmp_path, text, message):
    write(tmp_path, "bad.sql", text)
    with pytest.raises(QueryFileError, match=message):
        load_queries(tmp_path)


def test_duplicate_names_stop_the_start(tmp_path):
    write(tmp_path, "a.sql", "-- name: q :one\n-- Index: x\nSELECT 1")
    write(tmp_path, "b.sql", "-- name: q :one\n-- Index: x\nSELECT 2")
    with pytest.raises(QueryFileError, match="also defined"):
        load_queries(tmp_path)


def test_an_empty_folder_stops_the_start(tmp_path):
    with pytest.raises(QueryFileError):
        load_queries(tmp_path)
