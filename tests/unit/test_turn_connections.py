"""Database connections go with the turns (turn_connections.py), not with the threads.

Threads stand in for a worker's threads; each request goes through the WSGI layer that hands
out turns (request_turns.py). What a request used is told by the connection object it found.
"""

from __future__ import annotations

import io
import threading

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings

from twostep import request_turns, turn_connections
from twostep.services import admission

from .test_admission_gate import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def turns_of(request):
    """The process's turns, N of them, and no connection kept from another test."""
    def make(size: int):
        overridden = override_settings(TWOSTEP_ACTIVE_REQUESTS=size)
        overridden.enable()
        request.addfinalizer(overridden.disable)
        return admission.turns()
    turn_connections.close_all()
    yield make
    turn_connections.close_all()


def environ() -> dict:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/account/security", "wsgi.input": io.BytesIO()}


def reading(seen: list, then=None):
    """A WSGI application that reads the database, notes the connection it used, then runs `then`."""
    def application(environ, start_response):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        seen.append(connection.connection)  # the driver's connection behind the thread's wrapper
        if then is not None:
            then()
        return [b"ok"]
    return request_turns.wrap(application)


def on_thread(target, *args):
    thread = threading.Thread(target=target, args=args)
    thread.start()
    return thread


def finish(*threads):
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


def test_requests_one_after_another_on_many_threads_share_one_connection(turns_of):
    turns_of(1)
    seen = []
    app = reading(seen)
    for _ in range(8):
        finish(on_thread(app, environ(), None))
    assert len(seen) == 8
    assert len({id(c) for c in seen}) == 1  # one thread a connection would have opened eight
    assert turn_connections.kept() == 1


def test_requests_at_once_never_share_a_connection(turns_of):
    turns_of(2)
    seen = []
    both_in = threading.Barrier(2, timeout=10)
    app = reading(seen, then=both_in.wait)
    finish(on_thread(app, environ(), None), on_thread(app, environ(), None))
    assert len({id(c) for c in seen}) == 2
    assert turn_connections.kept() == 2
    finish(on_thread(app, environ(), None), on_thread(app, environ(), None))
    assert len({id(c) for c in seen}) == 2  # the second pair took the first pair's two


def test_requests_that_check_a_password_one_after_another_share_one_connection(turns_of):
    turns_of(1)
    seen = []

    def check_a_password():
        with admission.hashing(priority=True), connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # the user, read outside the turn
            seen.append(connection.connection)
        with transaction.atomic():  # the attempt settled, back in the turn
            seen.append(connection.connection)

    app = reading(seen, then=check_a_password)
    for _ in range(6):
        finish(on_thread(app, environ(), None))
    assert len(seen) == 18
    assert len({id(c) for c in seen}) == 1
    assert turn_connections.kept() == 1


def test_a_password_check_outside_the_turn_never_uses_the_connection_of_the_request_in_its_place(turns_of):
    one_turn = turns_of(1)
    checking, other_done = threading.Event(), threading.Event()
    mine, others = [], []

    def check_a_password():
        with admission.hashing(priority=True):  # a password check steps aside from the turn
            assert not one_turn.held()
            # It reads the user meanwhile, outside the turn, on a connection of its own.
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            mine.append(connection.connection)
            checking.set()
            assert other_done.wait(10)
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            mine.append(connection.connection)

    checker = on_thread(reading(mine, then=check_a_password), environ(), None)
    assert checking.wait(10)
    finish(on_thread(reading(others), environ(), None))  # runs in the turn meanwhile
    other_done.set()
    finish(checker)
    assert mine[1] is mine[2]
    assert others[0] is not mine[1]
    assert turn_connections.kept() == 2


def test_a_request_waiting_at_the_hashing_gate_holds_no_connection(turns_of):
    turns_of(1)
    hashing, queued, done = threading.Event(), threading.Event(), threading.Event()
    first, waiting, third = [], [], []

    def hash_until_done():
        with admission.hashing(priority=True):
            hashing.set()
            assert done.wait(10)

    def wait_for_the_slot():
        queued.set()
        with admission.hashing(priority=True):
            pass

    with override_settings(TWOSTEP_HASH_CONCURRENCY=1, TWOSTEP_HASH_QUEUE_LENGTH=4,
                           TWOSTEP_HASH_PRIORITY_TIMEOUT=10):
        holder = on_thread(reading(first, then=hash_until_done), environ(), None)
        assert hashing.wait(10)
        waiter = on_thread(reading(waiting, then=wait_for_the_slot), environ(), None)
        assert queued.wait(10)
        wait_until(lambda: admission.gate().state()["waiting_priority"] == 1)
        finish(on_thread(reading(third), environ(), None))
        done.set()
        finish(holder, waiter)
    assert third[0] is waiting[0]  # the waiter's connection served the request in its turn
    assert third[0] is not first[0]


def test_a_failed_request_gives_its_connection_back(turns_of):
    turns_of(1)
    seen = []

    def fail():
        raise RuntimeError("the view failed")

    def failing(environ, start_response):
        with pytest.raises(RuntimeError):
            reading(seen, then=fail)(environ, start_response)

    finish(on_thread(failing, environ(), None))
    finish(on_thread(reading(seen), environ(), None))
    assert seen[0] is seen[1]


def test_a_connection_opened_outside_a_turn_serves_its_threads_next_request_then_the_others(turns_of):
    turns_of(1)
    seen, own = [], []

    def streamed_then_next_request():
        # A streamed answer's rows are read after the turn, on a connection of the thread's own.
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        own.append(connection.connection)
        reading(seen)(environ(), None)

    finish(on_thread(streamed_then_next_request))
    assert seen == own
    finish(on_thread(reading(seen), environ(), None))
    assert seen[1] is own[0]


def test_a_connection_in_a_transaction_is_never_handed_on(turns_of):
    turns_of(1)
    with transaction.atomic():
        turn_connections.give_back()
        assert connections.all(initialized_only=True)  # still this thread's
    assert turn_connections.kept() == 0


def test_outside_a_request_a_password_check_keeps_the_threads_connection(turns_of):
    """A command hashes a password with no turn: its connection stays its own, none opened besides."""
    turns_of(1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    before = connection.connection
    for _ in range(3):
        with admission.hashing(priority=True), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert connection.connection is before
    assert turn_connections.kept() == 0
