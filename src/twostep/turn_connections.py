"""Database connections go with a process's turns, not with its threads.

A worker has many threads so that requests can wait (for the hashing gate, a hash, a slow
client) and runs few of them at once (its turns, core/turns.py). Django keeps a connection per
thread: sixteen threads, sixteen connections — on PostgreSQL sixteen server processes per worker,
most of them idle, and in each worker sixteen sets of compiled statements and caches. Here a
request borrows connections when it takes a turn and hands them on when it gives the turn up:
at its end, and while it waits at the hashing gate (services/admission.py), where a password
check borrows some again only for the check itself. So a worker holds as many connections as
it ever ran requests and checks at once — one or two on SQLite, a few on PostgreSQL — and the
one a request gets is the one used last.

Only between transactions: a request steps aside only with no transaction open, its
transactions end with it, and a connection inside one is never handed on. A thread that opened
a connection outside a turn (a streamed answer's rows, read as the answer is written) keeps it
for its next request, which then hands it on with the others.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from django.db import connections

_lock = threading.Lock()
_free: list[dict] = []  # each: alias → connection, as one request left them; the last is the warmest


def lend() -> None:
    """Give this thread the connections handed on last, unless it has its own."""
    if connections.all(initialized_only=True):
        return
    with _lock:
        if not _free:
            return  # the thread opens its own, handed on when it gives up its turn
        kept = _free.pop()
    for alias, connection in kept.items():
        connection.close_if_unusable_or_obsolete()  # as Django checks them at a request's start
        connections[alias] = connection


def give_back() -> None:
    """Hand this thread's connections on to the next request, unless one is in a transaction."""
    kept = {}
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            return  # its transaction is this thread's; its connections stay with it
        kept[connection.alias] = connection
    if not kept:
        return
    for alias, connection in kept.items():
        if not connection.allow_thread_sharing:
            connection.inc_thread_sharing()  # from now on it moves between this process's threads
        del connections[alias]
    with _lock:
        _free.append(kept)


@contextmanager
def borrowed():
    """Hold connections handed on by another request for the block; hand them on after it."""
    lend()
    try:
        yield
    finally:
        give_back()


@contextmanager
def handed_on():
    """Hand this thread's connections on for the block; borrow some again after it."""
    give_back()
    try:
        yield
    finally:
        lend()


def kept() -> int:
    """How many requests' connections wait for the next request."""
    with _lock:
        return len(_free)


def close_all() -> None:
    """Close the connections no request holds now, and forget them."""
    with _lock:
        closing, _free[:] = list(_free), []
    for kept_connections in closing:
        for connection in kept_connections.values():
            connection.close()
