"""Who make loadtest's simulated users are (loadtests/members.py): newcomers or returning members,
and the accounts file that hands the members their tokens."""

from __future__ import annotations

import pytest

from loadtests.members import Accounts, accounts_lines, is_newcomer, parse_accounts

TOKEN = "pst_" + "A" * 43


def test_newcomers_are_the_given_share_spread_evenly_over_the_start():
    assert [number for number in range(30) if is_newcomer(number, 10)] == [9, 19, 29]
    assert sum(is_newcomer(number, 10) for number in range(200)) == 20
    assert [number for number in range(10) if is_newcomer(number, 30)] == [3, 6, 9]  # 0.3 × 3 is not 0.9 here
    assert sum(is_newcomer(number, 33) for number in range(100)) == 33


def test_no_newcomers_or_only_newcomers():
    assert not any(is_newcomer(number, 0) for number in range(500))
    assert all(is_newcomer(number, 100) for number in range(500))


def test_accounts_are_written_and_read_back_as_user_id_and_token():
    text = "".join(f"{line}\n" for line in accounts_lines([7, 9], [TOKEN, "pst_x"]))
    assert parse_accounts(text + "\n") == [(7, TOKEN), (9, "pst_x")]


def test_a_malformed_accounts_line_is_named_by_its_number_not_its_content():
    for line in (f"seven {TOKEN}", "7", f"7 {TOKEN} extra"):
        with pytest.raises(ValueError) as raised:
            parse_accounts(f"1 {TOKEN}\n{line}\n")
        assert "line 2" in str(raised.value) and TOKEN not in str(raised.value)


def test_each_account_goes_to_one_user_in_order_then_none_are_left(tmp_path):
    path = tmp_path / "accounts.txt"
    path.write_text(f"7 {TOKEN}\n9 pst_x\n")
    accounts = Accounts.from_file(str(path))
    assert [accounts.take(), accounts.take(), accounts.take()] == [(7, TOKEN), (9, "pst_x"), None]


def test_without_an_accounts_file_every_user_is_a_newcomer():
    assert Accounts.from_file("").take() is None
