"""Admission control for password hashing in this process (core/admission.py has the gate).

Every Argon2 hash of the process passes the one gate: the sign-in's password check in the lane
its browser earned (`hashing(priority=...)`: a device cookie of the login → the priority lane),
any other hash (a signed-in person's re-authentication, a new password, a command) in the
priority lane through the hasher itself (twostep/hashers.py). A request refused at the gate is
`Busy`: HTTP 503 with Retry-After on every transport, nothing checked, nothing counted.

Settings (docs/configuration.md): TWOSTEP_HASH_CONCURRENCY (slots per process; default the
CPUs this process may run on), TWOSTEP_HASH_QUEUE_LENGTH (normal-lane waiters; default the
slots), TWOSTEP_HASH_QUEUE_TIMEOUT (normal-lane wait, 2 s) and TWOSTEP_HASH_PRIORITY_TIMEOUT
(priority-lane wait, 10 s).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from functools import cache

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .. import metrics
from ..core.admission import Full, Gate
from .errors import ServiceError


class Busy(ServiceError):
    """Too many password checks at once: come back in `retry_after` seconds. Not a failure."""

    code = "busy"
    default_message = _("Many people are signing in right now. Please try again in a few seconds.")

    def __init__(self, retry_after: int, message=None):
        self.retry_after = max(1, int(retry_after))
        super().__init__(message)


def cpus() -> int:
    """Return the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def limits() -> dict:
    """Return the gate's figures as configured: slots, queue length, the two waits (seconds)."""
    slots = settings.TWOSTEP_HASH_CONCURRENCY or cpus()
    queue = settings.TWOSTEP_HASH_QUEUE_LENGTH
    return {"slots": max(1, slots), "queue_length": slots if queue is None else max(0, queue),
            "wait": settings.TWOSTEP_HASH_QUEUE_TIMEOUT,
            "priority_wait": settings.TWOSTEP_HASH_PRIORITY_TIMEOUT}


_made = threading.Lock()


@cache
def _gate_for(slots: int, queue_length: int, wait: float, priority_wait: float) -> Gate:
    return Gate(slots, queue_length=queue_length, wait=wait, priority_wait=priority_wait)


def gate() -> Gate:
    """Return this process's gate (one per configuration, made on first use)."""
    figures = limits()
    with _made:
        return _gate_for(figures["slots"], figures["queue_length"], figures["wait"], figures["priority_wait"])


def refusal(*, priority: bool) -> None:
    """Raise Busy at once when the lane is full: before any other work is done for the request."""
    wait = gate().refusal(priority=priority)
    if wait is not None:
        metrics.count_busy(priority)
        raise Busy(wait)


@contextmanager
def hashing(*, priority: bool):
    """Hold a hashing slot for the block, in the given lane; raise Busy if none comes in time.

    Nested blocks in one thread share the outer slot, so nothing inside raises Full.
    """
    try:
        with gate().admit(priority=priority):
            yield
    except Full as full:
        metrics.count_busy(priority)
        raise Busy(full.retry_after) from None
