"""The one place that reads the wall clock, so tests can move time instead of sleeping."""

import time
from datetime import UTC, datetime


def now() -> float:
    """Return the current Unix time in seconds."""
    return time.time()


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime (from now(), so one seam moves both)."""
    return datetime.fromtimestamp(now(), UTC)
