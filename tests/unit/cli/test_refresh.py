"""The `--watch` of the CLI's views (posterr/cli/refresh.py): how many frames are shown, and the
status a failing frame ends the watch with."""

from __future__ import annotations

import io

import pytest

from posterr.cli.refresh import refreshed


@pytest.mark.parametrize("every, frames, statuses, shown, status", [
    (None, None, [0], 1, 0),  # no --watch: one frame
    (None, 3, [0], 1, 0),  # a frame count alone changes nothing
    (0.0, 3, [0, 0, 0, 0], 3, 0),  # --watch with a count: that many frames
    (0.0, None, [0, 2], 2, 2),  # a failing frame ends the watch with its status
])
def test_a_view_is_refreshed_until_its_count_or_a_failure(every, frames, statuses, shown, status):
    calls = []

    def show(clear: bool) -> int:
        calls.append(clear)
        return statuses[len(calls) - 1]

    assert refreshed(show, every, frames, io.StringIO()) == status
    assert calls == [False] * shown  # not a terminal: never cleared
