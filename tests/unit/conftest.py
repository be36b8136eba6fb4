"""Fixtures shared by the unit tests."""

from __future__ import annotations

import time

import pytest


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """time.monotonic() frozen at clock[0] (100.0 to begin with), which the test moves."""
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    return now
