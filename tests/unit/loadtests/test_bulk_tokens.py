"""The load tools' bulk tokens (loadtests/bulk_tokens.py): whom they go to, and the private file
that hands them over."""

from __future__ import annotations

import stat

import pytest

from loadtests.bulk_tokens import spread, write_private

TOKEN = "pst_" + "A" * 43


def test_a_range_no_larger_than_the_count_gives_every_id():
    assert spread(5, 9, 10) == [5, 6, 7, 8, 9]
    assert spread(5, 9, 5) == [5, 6, 7, 8, 9]


def test_a_larger_range_gives_distinct_ids_evenly_spread_over_it():
    ids = spread(101, 1100, 4)
    assert ids == [101, 351, 601, 851]
    picked = spread(1, 100_003, 10_000)
    assert len(picked) == len(set(picked)) == 10_000 and picked[0] == 1 and 100_003 - picked[-1] < 11


def test_an_empty_range_or_count_gives_none():
    assert spread(10, 9, 5) == [] and spread(1, 10, 0) == []


def test_the_private_file_is_its_owners_alone_and_never_replaces_another(tmp_path):
    path = write_private(tmp_path / "tokens.txt", [TOKEN, "pst_" + "B" * 43])
    assert path.read_text() == f"{TOKEN}\npst_{'B' * 43}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_private(path, [TOKEN])
