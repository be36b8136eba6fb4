"""posterr/token_uses.py: uses are noted to the minute and written in one batch, the latest minute of
each token; a batch that fails to be written is kept for the next; stopping writes what is left."""

from __future__ import annotations

from datetime import UTC, datetime

from posterr import token_uses
from posterr.token_uses import TokenUses


def test_uses_are_written_in_one_batch_each_token_at_its_latest_minute(monkeypatch):
    written = []
    uses = TokenUses(lambda ids, minutes: written.append(dict(zip(ids, minutes, strict=True))))
    clock = [1_800_000_000.0]  # 2027-01-15T08:00:00Z
    monkeypatch.setattr(token_uses.time, "time", lambda: clock[0])
    uses.used(1)
    clock[0] += 61
    uses.used(2)
    uses.used(1)
    uses.flush()
    uses.flush()  # nothing new: no write
    minute = datetime(2027, 1, 15, 8, 1, tzinfo=UTC)
    assert written == [{1: minute, 2: minute}]


def test_a_batch_that_fails_is_kept_for_the_next_flush():
    attempts = []

    def write(ids, minutes):
        attempts.append(sorted(ids))
        if len(attempts) == 1:
            raise ConnectionError("PostgreSQL is away")

    uses = TokenUses(write)
    uses.used(7)
    uses.flush()
    uses.used(8)
    uses.flush()
    assert attempts == [[7], [7, 8]]


def test_stopping_writes_what_is_left_even_if_the_thread_never_ran():
    written = []
    uses = TokenUses(lambda ids, minutes: written.extend(ids), every=3600)
    uses.start()
    uses.used(5)
    uses.stop()
    assert written == [5]
