"""posterr/cursors.py: a cursor comes back as it was made, is opaque URL-safe text, and is refused
when it is of another kind, signed with another secret, tampered with or garbage."""

from __future__ import annotations

import pytest

from posterr.cursors import CursorCodec
from posterr.errors import ValidationFailed

codec = CursorCodec("secret")


def test_round_trip():
    cursor = codec.encode("posts:latest", ["2026-11-26T06:38:45.123456+00:00", 42])
    assert codec.decode("posts:latest", cursor) == ["2026-11-26T06:38:45.123456+00:00", 42]


def test_cursor_is_opaque_url_safe_text():
    cursor = codec.encode("users", [7])
    assert all(c.isalnum() or c in "-_." for c in cursor)


def test_cursor_for_another_kind_is_refused():
    with pytest.raises(ValidationFailed):
        codec.decode("posts:trending", codec.encode("posts:latest", ["x", 1]))


def test_cursor_signed_with_another_secret_is_refused():
    with pytest.raises(ValidationFailed):
        codec.decode("users", CursorCodec("other").encode("users", [7]))


@pytest.mark.parametrize("cursor", ["", "abc", "abc.def", "a.b.c", "ü.ü", "....", "W10.AAAA"])
def test_garbage_is_refused(cursor):
    with pytest.raises(ValidationFailed):
        codec.decode("users", cursor)


def test_tampered_payload_is_refused():
    body, signature = codec.encode("users", [7]).split(".")
    forged = CursorCodec("secret").encode("users", [8]).split(".")[0]
    with pytest.raises(ValidationFailed):
        codec.decode("users", f"{forged}.{signature}")
    assert body != forged
