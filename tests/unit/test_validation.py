"""posterr/validation.py, as tables of good and bad input: usernames, ids (in a body, in a path),
content, limits, sort orders, days and date ranges, LIKE patterns, what a creation is, and flags."""

from __future__ import annotations

from datetime import date

import pytest

from posterr import validation
from posterr.errors import ValidationFailed


@pytest.mark.parametrize("value", ["a", "Z9", "abcdefghijklmn", "123"])
def test_good_usernames(value):
    assert validation.username(value) == value


@pytest.mark.parametrize("value", [None, "", "abcdefghijklmno", "abc\n", "a b", "a_b", "é", "١", 5, b"abc"])
def test_bad_usernames(value):
    with pytest.raises(ValidationFailed) as caught:
        validation.username(value)
    assert caught.value.errors[0]["field"] == "username"


BAD_IDS = [None, 0, -1, 2**63, "1", 1.0, 1.5, True, False, [1], {"id": 1}]


@pytest.mark.parametrize("value, expected", [(1, True), (2**63 - 1, True), *((value, False) for value in BAD_IDS)])
def test_one_rule_says_what_an_id_is(value, expected):
    """The rule body ids, path ids and the Idempotency-Key's acting user all go by."""
    assert validation.is_id(value) is expected


@pytest.mark.parametrize("value, expected", [(1, 1), (2**63 - 1, 2**63 - 1)])
def test_good_body_ids(value, expected):
    assert validation.body_id("user_id", value) == expected


@pytest.mark.parametrize("value", BAD_IDS)
def test_bad_body_ids(value):
    with pytest.raises(ValidationFailed):
        validation.body_id("user_id", value)


def test_optional_body_id_may_be_null():
    assert validation.body_id("repost_id", None, required=False) is None


@pytest.mark.parametrize("text, expected", [("1", 1), ("42", 42), ("0", None), ("-1", None), ("abc", None),
                                            ("1.0", None), ("٣", None), (str(2**63), None), ("", None)])
def test_path_ids(text, expected):
    assert validation.path_id(text) == expected


# Direction marks and joiners inside visible text stay: right-to-left languages and emoji need them.
@pytest.mark.parametrize("value", ["x", " x ", "a" * 777, "😀" * 777, "line\nbreak", "tab\tand\r\nreturn",
                                   "a\u202eb", "\u200fمرحبا", "שלום\u200e!", "👩\u200d💻", "x\u200b",
                                   "soft\u00adhyphen", "\u00a0x\u3000"])
def test_good_content_is_kept_exactly(value):
    assert validation.content(value) == value


# Only white space (str.isspace) or invisible format characters (Unicode Cf), or any control character
# (Unicode Cc) but tab, line feed and carriage return.
@pytest.mark.parametrize("value", [
    "", " ", "\n\t", "\u2003\u00a0", "\x1c", "\u200b\u200b", "\u200d", " \u2060 ", "\ufeff", "\u200e\u200f",
    "\u00ad", "\U000e0001", "\u202e\n", "a\u202eevil\u001b[31m\r\nfake", "a\x00b", "bell\x07", "back\x08space",
    "tab\x0bvertical", "form\x0cfeed", "del\x7f", "next\x85line", "c1\x9b31m", "a" * 778, "😀" * 778, 5, None])
def test_bad_content(value):
    with pytest.raises(ValidationFailed):
        validation.content(value)


@pytest.mark.parametrize("text, expected", [(None, 10), ("", 10), ("1", 1), ("100", 100)])
def test_good_limits(text, expected):
    assert validation.limit(text) == expected


@pytest.mark.parametrize("text", ["0", "101", "-1", "abc", "1.5", " 5", "٥"])
def test_bad_limits(text):
    with pytest.raises(ValidationFailed):
        validation.limit(text)


@pytest.mark.parametrize("text, expected", [(None, "latest"), ("", "latest"), ("latest", "latest"),
                                            ("trending", "trending")])
def test_sort_orders(text, expected):
    assert validation.sort_order(text) == expected


@pytest.mark.parametrize("text", ["Latest", "oldest", "trending "])
def test_bad_sort_orders(text):
    with pytest.raises(ValidationFailed):
        validation.sort_order(text)


@pytest.mark.parametrize("text, expected", [(None, None), ("2026-02-28", date(2026, 2, 28))])
def test_good_days(text, expected):
    assert validation.day("start_date", text) == expected


@pytest.mark.parametrize("text", ["2026-02-30", "2026-2-1", "20260201", "2026-02-01T00:00", "yesterday"])
def test_bad_days(text):
    with pytest.raises(ValidationFailed):
        validation.day("start_date", text)


def test_date_range_must_not_be_reversed():
    assert validation.date_range(date(2026, 1, 1), date(2026, 1, 1)) == (date(2026, 1, 1), date(2026, 1, 1))
    with pytest.raises(ValidationFailed):
        validation.date_range(date(2026, 1, 2), date(2026, 1, 1))


@pytest.mark.parametrize("keyword, pattern", [("cat", "%cat%"), ("100%", "%100\\%%"), ("a_b", "%a\\_b%"),
                                              ("back\\slash", "%back\\\\slash%")])
def test_like_patterns_take_wildcards_literally(keyword, pattern):
    assert validation.like_pattern(keyword) == pattern


# Three consecutive letters or digits (as the database's locale counts them): the trigram index can
# serve the keyword; without them it is searched among the newest posts only (contract v2.1).
@pytest.mark.parametrize("keyword, expected", [
    ("zq", False), ("~~", False), ("a.b", False), ("éàü", True), ("a b c", False), ("ab-cd", False),
    ("abc", True), ("ab1", True), ("123", True), ("日本語", True), ("日本", False), ("x", False), ("%_%", False),
    ("a_b", False), ("ab%", False), ("#42", False), ("#420", True), ("100%", True), ("ZQX", True),
    ("zq~x", False), ("..abc..", True), ("ⅫⅫⅫ", True), ("x²y", False), ("½½½", False),
    ("e\u0301e", False),  # a combining accent (decomposed é) is not alphanumeric to PostgreSQL
    ("ab\u00a0c", False), ("Ωμß", True), ("٣٤٥", True),
])
def test_a_keyword_has_a_trigram_when_it_holds_three_letters_or_digits_in_a_row(keyword, expected):
    assert validation.has_trigram(keyword) is expected


@pytest.mark.parametrize("content, repost_id, reply_to_id, expected", [
    ("hi", None, None, ("post", "hi")),
    (None, 3, None, ("repost", None)),
    ("", 3, None, ("repost", None)),
    ("my take", 3, None, ("quote", "my take")),
    ("agreed", None, 4, ("reply", "agreed")),
    (" agreed ", None, 4, ("reply", " agreed ")),
])
def test_what_a_creation_is(content, repost_id, reply_to_id, expected):
    assert validation.creation(content, repost_id, reply_to_id) == expected


@pytest.mark.parametrize("content, repost_id, reply_to_id, field", [
    (None, None, None, "content"),
    ("  ", None, None, "content"),
    (" ", 3, None, "content"),
    (None, None, 4, "content"),
    ("", None, 4, "content"),
    ("\u3000", None, 4, "content"),
    ("a" * 778, None, 4, "content"),
    ("both", 3, 4, "reply_to_id"),
    (None, 3, 4, "reply_to_id"),
])
def test_creations_that_are_refused(content, repost_id, reply_to_id, field):
    with pytest.raises(ValidationFailed) as caught:
        validation.creation(content, repost_id, reply_to_id)
    assert caught.value.errors[0]["field"] == field


@pytest.mark.parametrize("text, expected", [(None, False), ("", False), ("false", False), ("true", True)])
def test_flags(text, expected):
    assert validation.flag("include_replies", text) is expected


@pytest.mark.parametrize("text", ["True", "FALSE", "1", "0", "yes", "no", " true", "on"])
def test_bad_flags(text):
    with pytest.raises(ValidationFailed) as caught:
        validation.flag("include_replies", text)
    assert caught.value.errors[0]["field"] == "include_replies"


@pytest.mark.parametrize("value, expected", [(None, ["read", "write"]), (["write"], ["write"]), (["read"], ["read"]),
                                             (["write", "read"], ["read", "write"])])
def test_good_token_scopes(value, expected):
    assert validation.token_scopes(value) == expected


@pytest.mark.parametrize("value", [[], ["admin"], ["read", "read"], "read", ["READ"], [1], [None], {"read": True}])
def test_bad_token_scopes(value):
    with pytest.raises(ValidationFailed) as caught:
        validation.token_scopes(value)
    assert caught.value.errors[0]["field"] == "scopes"


@pytest.mark.parametrize("value, expected", [(None, ""), ("", ""), ("laptop", "laptop"), ("é" * 100, "é" * 100)])
def test_good_token_names(value, expected):
    assert validation.token_name(value) == expected


@pytest.mark.parametrize("value", ["n" * 101, "a\nb", "tab\t", "\x7f", 5, ["x"]])
def test_bad_token_names(value):
    with pytest.raises(ValidationFailed):
        validation.token_name(value)


@pytest.mark.parametrize("value, expected", [(None, None), (60, 60), (31_536_000, 31_536_000)])
def test_good_token_lifetimes(value, expected):
    assert validation.token_lifetime(value) == expected


@pytest.mark.parametrize("value", [59, 31_536_001, 0, -60, "60", 60.0, True])
def test_bad_token_lifetimes(value):
    with pytest.raises(ValidationFailed) as caught:
        validation.token_lifetime(value)
    assert caught.value.errors[0]["field"] == "expires_in"


@pytest.mark.parametrize("value", [None, 5, b"alice", ["alice"]])
def test_a_login_needs_text(value):
    with pytest.raises(ValidationFailed):
        validation.login_text("username", value)
