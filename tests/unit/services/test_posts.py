"""posterr/services/posts.py: how far keyword search walks down the newest posts before it asks the
trigram index."""

import pytest

from posterr.services.posts import FIRST_WALK, LONGEST_WALK, next_walk


@pytest.mark.parametrize("walked, found, wanted, posts, expected", [
    (0, 0, 11, 1_000, 0),  # a small table: the trigram index at once
    (0, 0, 11, 1_000_000, FIRST_WALK),  # a large one: a short walk first
    (FIRST_WALK, 11, 11, 1_000_000, FIRST_WALK),  # the page is full: done
    (FIRST_WALK, 0, 11, 10_000_000, FIRST_WALK),  # nothing found: trigram
    (FIRST_WALK, 1, 11, 10_000_000, FIRST_WALK),  # 0.05% of 10M: 5,000 matches cost less than a 22,000-post walk
    (FIRST_WALK, 2, 11, 10_000_000, 16_500),  # 0.1%: a page is 11,000 posts away, 1.5 times that is walked
    (FIRST_WALK, 10, 11, 1_000_000, 3_300),  # 0.5%: almost there
    (FIRST_WALK, 1, 101, 1_000_000, FIRST_WALK),  # 0.05% and a page of 101: trigram
    (FIRST_WALK, 5, 101, 10_000_000, 60_600),
    (FIRST_WALK, 1, 101, 1_000_000_000, LONGEST_WALK),  # never further than LONGEST_WALK
    (16_500, 5, 11, 10_000_000, 16_500),  # the second walk is the last
])
def test_next_walk(walked, found, wanted, posts, expected):
    assert next_walk(walked, found, wanted, posts) == expected
