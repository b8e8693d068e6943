"""Admission control: at most N password hashes at once in a process, members first.

A password hash (Argon2) costs tens to hundreds of milliseconds of CPU and megabytes of memory.
When guesses arrive faster than the CPUs can hash them, an unbounded server starts them all:
every hash slows down, memory grows with the crowd, and a member who knows the password waits
behind the strangers until the client gives up. A `Gate` bounds the hashes running at once
(and with them the memory) and lets the rest wait in one of two lanes:

- the priority lane: browsers that signed in before (a device cookie) and people already signed
  in. A freed slot goes to the oldest of them first; they wait up to `priority_wait` seconds.
- the normal lane: everyone else. At most `queue_length` wait, for at most `wait` seconds; a
  request that would wait longer — the lane is full, or the hashes ahead of it would take
  longer than `wait` at the pace measured so far — is refused at once with a time to come back.

Refusing is cheap (no hash, no database), so a flood costs little beyond the hashes it is let
through, and a member's request never queues behind more than the hashes already running.
Everything is per process (threading primitives): with P processes the machine runs at most
P × slots hashes at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from contextlib import contextmanager

# Weight of the newest hold time in the running mean used to predict waits.
_SMOOTHING = 0.2


class Full(Exception):
    """No slot within the lane's deadline; `retry_after` is a whole number of seconds (≥ 1)."""

    def __init__(self, retry_after: int):
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"busy, retry after {self.retry_after} s")


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self):
        self.event = threading.Event()
        self.granted = False


class Gate:
    """A counting semaphore with two FIFO lanes and a deadline per lane; re-entrant per thread."""

    def __init__(self, slots: int, *, queue_length: int, wait: float, priority_wait: float,
                 clock=time.monotonic):
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self.slots = slots
        self.queue_length = max(0, queue_length)
        self.wait = max(0.0, wait)
        self.priority_wait = max(0.0, priority_wait)
        self._clock = clock
        self._lock = threading.Lock()
        self._free = slots
        self._priority: deque[_Waiter] = deque()
        self._normal: deque[_Waiter] = deque()
        self._mean_hold: float | None = None
        self._local = threading.local()
        # Counters for reports and tests: admitted at once, admitted after waiting, refused.
        self.admitted = self.queued = self.refused = 0

    # What is going on ---------------------------------------------------------------------

    def state(self) -> dict:
        with self._lock:
            return {"slots": self.slots, "running": self.slots - self._free,
                    "waiting_priority": len(self._priority), "waiting": len(self._normal),
                    "mean_hold_ms": None if self._mean_hold is None else round(self._mean_hold * 1000, 1),
                    "admitted": self.admitted, "queued": self.queued, "refused": self.refused}

    def _predicted_wait(self, ahead: int) -> float:
        """Seconds until a request with `ahead` requests queued before it gets a slot."""
        if self._mean_hold is None:
            return 0.0
        return math.ceil((ahead + 1) / self.slots) * self._mean_hold

    def _retry_after(self) -> int:
        waiting = len(self._priority) + len(self._normal)
        return max(1, math.ceil(max(self.wait, self._predicted_wait(waiting))))

    def refusal(self, *, priority: bool) -> int | None:
        """Return the Retry-After seconds if a request in this lane would be refused at once, else None.

        A cheap look before doing any other work for a request; `admit` decides for real.
        """
        if priority or self.held():
            return None
        with self._lock:
            if self._free > 0:
                return None
            if len(self._normal) >= self.queue_length or self._too_long():
                return self._retry_after()
        return None

    def _too_long(self) -> bool:
        return self._predicted_wait(len(self._priority) + len(self._normal)) > self.wait

    def held(self) -> bool:
        """Tell whether this thread holds a slot now."""
        return getattr(self._local, "depth", 0) > 0

    # Taking and giving back a slot ----------------------------------------------------------

    @contextmanager
    def admit(self, *, priority: bool):
        """Hold a slot for the block, waiting in the lane; raise Full if none comes in time.

        A thread already holding a slot passes straight through (one hash may call another:
        checking a password, then storing it again with new parameters).
        """
        if self.held():
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        self._acquire(priority)
        self._local.depth = 1
        started = self._clock()
        try:
            yield
        finally:
            self._local.depth = 0
            self._release(self._clock() - started)

    def _acquire(self, priority: bool) -> None:
        with self._lock:
            if self._free > 0:  # never true while anyone waits: a freed slot goes to a waiter
                self._free -= 1
                self.admitted += 1
                return
            if not priority and (len(self._normal) >= self.queue_length or self._too_long()):
                self.refused += 1
                raise Full(self._retry_after())
            waiter = _Waiter()
            lane = self._priority if priority else self._normal
            lane.append(waiter)
        waiter.event.wait(self.priority_wait if priority else self.wait)
        with self._lock:
            if waiter.granted:
                self.queued += 1
                return
            lane.remove(waiter)
            self.refused += 1
            raise Full(self._retry_after())

    def _release(self, held_for: float) -> None:
        with self._lock:
            if self._mean_hold is None:
                self._mean_hold = held_for
            else:
                self._mean_hold += _SMOOTHING * (held_for - self._mean_hold)
            for lane in (self._priority, self._normal):
                if lane:
                    waiter = lane.popleft()
                    waiter.granted = True
                    waiter.event.set()
                    return
            self._free += 1
