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

Besides the gate, the process's turns (core/turns.py): at most TWOSTEP_ACTIVE_REQUESTS requests
run at once (the WSGI layer, twostep/request_turns.py, takes a turn for each); a request steps
aside while it waits at the gate and hashes, so that another runs meanwhile.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager, nullcontext
from functools import cache

from django.conf import settings
from django.db import connections
from django.utils.translation import gettext_lazy as _

from .. import metrics, turn_connections
from ..core.admission import Full, Gate
from ..core.turns import Turns
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

    Nested blocks in one thread share the outer slot, so nothing inside raises Full. The request
    steps aside from its turn meanwhile (the wait and the hash need no interpreter).
    """
    with aside() as stepped_aside:
        # Outside the turn the check reads the user on connections no other thread holds, handed
        # on again before this request waits for a turn (twostep/turn_connections.py).
        borrowing = turn_connections.borrowed() if stepped_aside else nullcontext()
        try:
            with gate().admit(priority=priority), borrowing:
                yield
        except Full as full:
            metrics.count_busy(priority)
            raise Busy(full.retry_after) from None


@cache
def _turns_for(size: int) -> Turns | None:
    return Turns(size) if size > 0 else None


def turns() -> Turns | None:
    """Return this process's turns (None when TWOSTEP_ACTIVE_REQUESTS is 0: no limit)."""
    with _made:
        return _turns_for(settings.TWOSTEP_ACTIVE_REQUESTS)


@contextmanager
def aside():
    """Give up this request's turn for the block, unless a transaction is open: for a wait
    that needs no interpreter (the hashing gate, a hash, a pause before looking again).
    Yields whether it did.

    A thread in a transaction may hold locks (a row, SQLite's write lock) that the request
    running in its place could wait for while holding the turn this thread needs to go on.
    The request's database connections go with the turn (twostep/turn_connections.py).
    """
    process_turns = turns()
    if (process_turns is None or not process_turns.held()
            or any(c.in_atomic_block for c in connections.all(initialized_only=True))):
        yield False
        return
    with turn_connections.handed_on(), process_turns.aside():
        yield True
