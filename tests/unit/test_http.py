"""posterr/http.py's pure parts: which Content-Type makes a body JSON (issue 37, finding 9)."""

from __future__ import annotations

import pytest

from posterr import http


@pytest.mark.parametrize("content_type", [
    "application/json",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    "Application/JSON",
    "  application/json ; charset=utf-8 ",
    "application/json; charset=utf-8; foo=bar",
])
def test_json_bodies(content_type):
    assert http.is_json_media_type(content_type)


@pytest.mark.parametrize("content_type", [
    None,
    "",
    "text/plain",  # what a page's fetch() or form may send with no preflight
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/merge-patch+json",  # a +json type says more than "a JSON object": not what the API takes
    "application/problem+json",
    "application/jsonx",
    "application/json-seq",
    "application/json, text/plain",
    "text/json",
    "application",
    "json",
    ";application/json",
])
def test_other_bodies(content_type):
    assert not http.is_json_media_type(content_type)
