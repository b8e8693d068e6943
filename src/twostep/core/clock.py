"""The one place that reads the wall clock, so tests can move time instead of sleeping."""

import time


def now() -> float:
    """Return the current Unix time in seconds."""
    return time.time()
