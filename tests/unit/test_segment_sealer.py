"""posterr/segment_sealer.py: the job's thread seals every `every` seconds until stopped, and a
failed seal (PostgreSQL away) is logged and left for the next round, never raised."""

from __future__ import annotations

import logging
import threading

from posterr.segment_sealer import SegmentSealer


def test_the_thread_seals_until_stopped():
    sealed = threading.Event()
    sealer = SegmentSealer(lambda: sealed.set() or 1, every=0.01)
    sealer.start()
    assert sealed.wait(5)
    sealer.stop()
    assert not sealer._thread.is_alive()


def test_a_failed_seal_is_logged_and_not_raised(caplog):
    def seal():
        raise ConnectionError("PostgreSQL is away")

    with caplog.at_level(logging.WARNING, logger="posterr.search"):
        SegmentSealer(seal).seal()
    assert "search_segments_not_sealed" in caplog.text
