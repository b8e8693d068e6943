"""Turns: at most N requests of a process run Python at once; the rest wait for a turn.

A worker keeps many threads so that a request waiting for something slow — a password hash on
another core, a slot at the hashing gate — does not stop the others. But threads that all want
to run Python share one interpreter lock: with sixteen of them runnable on two cores, each
request's work is cut into slices handed back and forth, every request takes as long as the
slowest, and SQLite's writers (which wait for the write lock by sleeping and polling) keep
losing the lock to newer ones. Measured on two cores with sixteen threads a worker, a sign-in
cost a fifth more CPU and its p99 was six times its p50; with two at a time, neither.

So a request takes a turn before it runs and gives it back when it is done; a request that
waits for something that needs no interpreter (the gate, a hash in C) steps aside, letting
another run meanwhile, and takes a turn again afterwards. Turns are handed out in arrival
order: a freed turn goes to the oldest waiter, never to a request that came later.
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager


class Turns:
    """A FIFO counting semaphore whose holders are threads, with a way to step aside."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError("at least one turn")
        self.size = size
        self._lock = threading.Lock()
        self._free = size
        self._waiting: deque[threading.Lock] = deque()
        self._local = threading.local()

    def held(self) -> bool:
        """Tell whether this thread holds a turn now."""
        return getattr(self._local, "held", False)

    def running(self) -> int:
        """How many turns are held now."""
        with self._lock:
            return self.size - self._free

    def waiting(self) -> int:
        """How many threads wait for a turn now."""
        with self._lock:
            return len(self._waiting)

    @contextmanager
    def turn(self):
        """Hold a turn for the block (a thread that holds one already passes straight through)."""
        if self.held():
            yield
            return
        self._take()
        try:
            yield
        finally:
            self._give_back()

    @contextmanager
    def aside(self):
        """Give this thread's turn to the next waiter for the block; take a turn again after it.

        For waits that need no interpreter. A thread without a turn passes straight through.
        """
        if not self.held():
            yield
            return
        self._give_back()
        try:
            yield
        finally:
            self._take()

    def _take(self) -> None:
        with self._lock:
            if self._free > 0 and not self._waiting:
                self._free -= 1
                self._local.held = True
                return
            baton = threading.Lock()
            baton.acquire()
            self._waiting.append(baton)
        baton.acquire()  # released by _give_back, which handed this thread its turn
        self._local.held = True

    def _give_back(self) -> None:
        self._local.held = False
        with self._lock:
            if self._waiting:
                self._waiting.popleft().release()  # the turn passes straight to the oldest waiter
            else:
                self._free += 1
