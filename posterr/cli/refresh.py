"""The `--watch` of the CLI's views (top, activity, cache stats): refreshed like `top`."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

CLEAR_SCREEN = "\033[H\033[2J"


def refreshed(show: Callable[[bool], int], every: float | None, frames: int | None, out) -> int:
    """show(clear) once, or every `every` seconds until the `frames`th frame, a non-zero status, or
    Ctrl-C (status 0). `clear` is whether to clear the screen first: only a watch on a terminal
    does; piped or captured, the frames follow each other."""
    try:
        for number in range(frames) if frames and every is not None else itertools.count():
            if number:
                time.sleep(every)  # the refresh interval the operator asked for
            status = show(every is not None and out.isatty())
            if status or every is None:
                return status
    except KeyboardInterrupt:
        pass  # how a watch is meant to end
    return 0
