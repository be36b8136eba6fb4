"""posterr/credentials.py: the shape of a token, its digest and hint, and where a request may carry
one (RFC 6750: the Authorization header only), as tables."""

from __future__ import annotations

import hashlib

import pytest

from posterr import credentials
from posterr.errors import InvalidAuthRequest, InvalidToken

GOOD = "pst_" + "0123456789ABCDEFGHIJabcdefghijklmnopqrstuvw"


def test_a_new_token_is_pst_and_43_base62_digits_of_32_random_bytes():
    made = {credentials.new_token() for _ in range(200)}
    assert len(made) == 200
    assert all(credentials.TOKEN.fullmatch(token) for token in made)
    assert 62**43 >= 2**256 > 62**42  # 43 digits hold every 32-byte value, 42 would not


def test_the_digest_is_sha256_and_the_hint_the_last_four_characters():
    assert credentials.digest(GOOD) == hashlib.sha256(GOOD.encode()).digest()
    assert credentials.hint(GOOD) == "pst_tuvw"


@pytest.mark.parametrize("header, token", [(None, None), (f"Bearer {GOOD}", GOOD), (f"bearer {GOOD}", GOOD),
                                           (f"  Bearer   {GOOD}  ", GOOD)])
def test_a_bearer_header_gives_its_token(header, token):
    assert credentials.bearer_token(header) == token


@pytest.mark.parametrize("header", ["Basic YWxpY2U6c2VjcmV0", "Token abc", GOOD, f"Bearer {GOOD},Bearer {GOOD}",
                                    f"Bearer {GOOD}, Basic x"])
def test_another_scheme_or_two_headers_are_invalid_requests(header):
    with pytest.raises(InvalidAuthRequest) as caught:
        credentials.bearer_token(header)
    assert caught.value.status == 400 and 'error="invalid_request"' in caught.value.headers["WWW-Authenticate"]


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer pst_", "Bearer " + GOOD[:-1], "Bearer " + GOOD + "x",
                                    "Bearer " + "pst_" + "a" * 10_000, "Bearer pst_" + "é" * 43, "Bearer " + GOOD[4:],
                                    "Bearer pst_" + "-" * 43])
def test_a_token_this_server_could_not_have_issued_is_invalid(header):
    with pytest.raises(InvalidToken) as caught:
        credentials.bearer_token(header)
    assert caught.value.status == 401 and 'error="invalid_token"' in caught.value.headers["WWW-Authenticate"]


@pytest.mark.parametrize("fields", [[("access_token", "x")], [("token", "")], [("keyword", GOOD)], [("content", GOOD)]])
def test_a_token_outside_the_header_is_refused(fields):
    with pytest.raises(InvalidAuthRequest):
        credentials.refuse_token_outside_header(fields, "body")


@pytest.mark.parametrize("fields", [[], [("keyword", "pst_")], [("content", f"my token is {GOOD}")], [("limit", 5)]])
def test_other_fields_pass(fields):
    credentials.refuse_token_outside_header(fields, "query string")
