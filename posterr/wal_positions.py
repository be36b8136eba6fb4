"""WAL positions as the read replicas' guarantees use them (posterr/replicas.py): as numbers that
order like them, as Redis keeps them, and the primary's sampled over the last seconds."""

from __future__ import annotations

from collections import deque


def position_text(position: str | None) -> str:
    """A write position as Redis keeps it (_REMEMBER compares them as strings): fixed-width hex, so
    that string order is WAL order; unknown (None) is above every position."""
    return f"{lsn(position):016X}" if position else "F" * 16


def lsn(text: str | None) -> int:
    """A WAL position ('16/B374D848') as a number that orders like it; none (NULL) is 0."""
    if not text:
        return 0
    high, _, low = text.partition("/")
    return int(high, 16) << 32 | int(low, 16)


class PrimaryHistory:
    """The primary's WAL position sampled over the last `keep` seconds: when was it last at or
    behind a given position? (guarantee 2)."""

    def __init__(self, keep: float):
        self.keep = keep
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at: float, position: int) -> None:
        self._samples.append((at, position))
        while len(self._samples) > 1 and self._samples[0][0] < at - self.keep:
            self._samples.popleft()

    def current_at(self, replayed: int) -> float | None:
        """The time of the newest sample the position `replayed` covers: a replica that has replayed
        this far holds every write acknowledged before then. None: older than every sample kept."""
        for at, position in reversed(self._samples):
            if position <= replayed:
                return at
        return None
