"""Turns (core/turns.py) and the WSGI layer that hands them out (request_turns.py).

Threads stand in for gunicorn's gthread threads. Order and counts are asserted, never timings.
"""

from __future__ import annotations

import datetime
import io
import threading
import time

import pytest
from django.db import transaction
from django.test import override_settings

from twostep import request_turns
from twostep.core.turns import Turns
from twostep.services import admission

from .test_admission_gate import wait_until


def test_no_more_than_the_turns_run_at_once():
    turns = Turns(2)
    running, most, lock = 0, 0, threading.Lock()

    def work():
        nonlocal running, most
        with turns.turn():
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.005)
            with lock:
                running -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most == 2
    assert turns.running() == 0 and turns.waiting() == 0


def test_a_freed_turn_goes_to_the_oldest_waiter():
    turns = Turns(1)
    order, release = [], threading.Event()

    def holder():
        with turns.turn():
            release.wait(10)

    def waiter(name):
        with turns.turn():
            order.append(name)

    first = threading.Thread(target=holder)
    first.start()
    wait_until(lambda: turns.running() == 1)
    waiters = []
    for count, name in enumerate("abcde", start=1):
        thread = threading.Thread(target=waiter, args=(name,))
        thread.start()
        waiters.append(thread)
        wait_until(lambda count=count: turns.waiting() == count)
    release.set()
    for thread in [first, *waiters]:
        thread.join(10)
    assert order == list("abcde")


def test_stepping_aside_lets_the_next_request_run_and_takes_a_turn_again():
    turns = Turns(1)
    aside, other_ran, done = threading.Event(), threading.Event(), threading.Event()
    held_after = []

    def hashing():
        with turns.turn():
            with turns.aside():
                aside.set()
                assert other_ran.wait(10)  # the other request ran while this one waited
            held_after.append(turns.held())
        done.set()

    def other():
        assert aside.wait(10)
        with turns.turn():
            other_ran.set()

    threads = [threading.Thread(target=hashing), threading.Thread(target=other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert done.is_set() and held_after == [True]
    assert turns.running() == 0


def test_a_thread_without_a_turn_passes_through_aside_and_a_nested_turn_takes_none():
    turns = Turns(1)
    with turns.aside():
        assert not turns.held()
    with turns.turn():
        with turns.turn():  # re-entrant: would wait for itself otherwise
            assert turns.running() == 1
        assert turns.held()
    assert not turns.held() and turns.running() == 0


def test_at_least_one_turn():
    with pytest.raises(ValueError):
        Turns(0)


# The WSGI layer ------------------------------------------------------------------------------


class SlowBody(io.RawIOBase):
    """A request body that arrives only when the test says so, as from a slow client."""

    def __init__(self, data: bytes):
        self.data, self.arrived, self.reading = data, threading.Event(), threading.Event()

    def read(self, size=-1):
        self.reading.set()
        assert self.arrived.wait(10)
        data, self.data = self.data, b""
        return data


def environ(body=b"", **more):
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/login", "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body), **more}


@pytest.fixture
def one_turn():
    with override_settings(TWOSTEP_ACTIVE_REQUESTS=1):
        yield admission.turns()


def test_a_slow_body_holds_a_thread_not_the_turn(one_turn):
    seen = []

    def application(environ, start_response):
        seen.append(environ["wsgi.input"].read())
        assert one_turn.held()
        return [b"ok"]

    wrapped = request_turns.wrap(application)
    slow = SlowBody(b"login=ana&password=x")
    slow_request = threading.Thread(target=wrapped, args=({**environ(b"x" * 20), "wsgi.input": slow}, None))
    slow_request.start()
    assert slow.reading.wait(10)
    assert wrapped(environ(b"quick"), None) == [b"ok"]  # ran while the slow body was still coming
    slow.arrived.set()
    slow_request.join(10)
    assert seen == [b"quick", b"login=ana&password=x"]
    assert one_turn.running() == 0


def test_a_body_larger_than_django_reads_is_left_to_django(one_turn):
    stream = io.BytesIO(b"x" * 100)
    env = {**environ(), "CONTENT_LENGTH": "100", "wsgi.input": stream}
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10):
        request_turns.wrap(lambda environ, start_response: [b"ok"])(env, None)
    assert env["wsgi.input"] is stream and stream.tell() == 0


def test_no_turns_when_switched_off():
    with override_settings(TWOSTEP_ACTIVE_REQUESTS=0):
        assert admission.turns() is None
        stream = io.BytesIO(b"body")
        env = environ(b"body", **{"wsgi.input": stream})
        assert request_turns.wrap(lambda environ, start_response: [b"ok"])(env, None) == [b"ok"]
        assert env["wsgi.input"] is stream  # nothing read ahead either


@pytest.mark.django_db(transaction=True)
def test_hashing_steps_aside_only_outside_a_transaction(one_turn):
    with one_turn.turn():
        with admission.hashing(priority=True):
            assert not one_turn.held()  # another request may run while this one hashes
        assert one_turn.held()
        with transaction.atomic(), admission.hashing(priority=True):
            assert one_turn.held()  # it may hold locks the request in its place would wait for


def test_the_liveness_check_takes_no_turn(one_turn):
    answered = []
    wrapped = request_turns.wrap(lambda environ, start_response: answered.append(one_turn.held()) or [b"ok"])
    wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": "/healthz", "wsgi.input": io.BytesIO()}, None)
    wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": "/login", "wsgi.input": io.BytesIO()}, None)
    assert answered == [False, True]


@pytest.mark.django_db(transaction=True)
def test_a_password_attempt_waiting_for_others_on_its_keys_gives_up_its_turn(one_turn, monkeypatch):
    """Busy keys: the attempts being checked decide, and they may need this worker's one turn."""
    from twostep.services import throttle_store, throttling

    answers = iter([(throttle_store.BUSY, 0), (throttle_store.BUSY, 0), (throttle_store.ADMITTED, 0)])
    held_while_waiting = []

    class Busy:
        def reserve(self, keys, now, delay_for):
            return next(answers)

    monkeypatch.setattr(throttling, "store", Busy)
    monkeypatch.setattr(throttling.time, "sleep", lambda pause: held_while_waiting.append(one_turn.held()))
    with one_turn.turn():
        throttling.reserve_password_attempt(["ip:192.0.2.1"], datetime.datetime.now(datetime.UTC))
        assert one_turn.held()  # its turn again once admitted
    assert held_while_waiting == [False, False]
