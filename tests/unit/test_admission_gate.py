"""The hashing gate (core/admission.py): a bound on hashes at once, two lanes, deadlines.

Threads stand in for gunicorn's gthread workers. Order and counts are asserted, never timings.
"""

from __future__ import annotations

import threading
import time

import pytest
from argon2.low_level import Type, hash_secret_raw

from twostep.core.admission import Full, Gate


def gate(slots=1, queue_length=4, wait=5.0, priority_wait=5.0, **kwargs) -> Gate:
    return Gate(slots, queue_length=queue_length, wait=wait, priority_wait=priority_wait, **kwargs)


class Holder:
    """A thread that holds one slot until told to let go."""

    def __init__(self, gate: Gate, *, priority: bool = True):
        self.taken, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, args=(gate, priority))
        self.thread.start()
        assert self.taken.wait(5)

    def _run(self, gate, priority):
        with gate.admit(priority=priority):
            self.taken.set()
            self.release.wait(10)

    def let_go(self):
        self.release.set()
        self.thread.join(5)


def wait_until(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


def test_no_more_than_the_slots_run_at_once():
    g = gate(slots=2, queue_length=16)
    running, most, lock = 0, 0, threading.Lock()

    def work():
        nonlocal running, most
        with g.admit(priority=False):
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.01)
            with lock:
                running -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert most == 2
    assert g.state()["admitted"] + g.state()["queued"] == 12 and g.state()["refused"] == 0


def test_a_full_normal_lane_refuses_at_once_with_a_time_to_come_back():
    g = gate(slots=1, queue_length=0, wait=3.0)
    holder = Holder(g)
    with pytest.raises(Full) as refused:
        with g.admit(priority=False):
            pass
    assert refused.value.retry_after == 3  # the lane's wait, rounded up, at least 1
    assert g.refusal(priority=False) == 3 and g.refusal(priority=True) is None
    holder.let_go()
    assert g.refusal(priority=False) is None  # a free slot: nothing to refuse
    with g.admit(priority=False):
        assert g.state()["running"] == 1


def test_a_waiter_past_its_deadline_is_refused_and_leaves_the_queue():
    g = gate(slots=1, queue_length=4, wait=0.05)
    holder = Holder(g)
    with pytest.raises(Full):
        with g.admit(priority=False):
            pass
    assert g.state()["waiting"] == 0
    holder.let_go()
    assert g.state()["running"] == 0


def test_a_freed_slot_goes_to_the_priority_lane_before_earlier_strangers():
    g = gate(slots=1, queue_length=8, wait=10.0, priority_wait=10.0)
    holder = Holder(g)
    order = []

    def enter(name, priority):
        with g.admit(priority=priority):
            order.append(name)

    strangers = [threading.Thread(target=enter, args=(f"stranger{i}", False)) for i in range(3)]
    for t in strangers:
        t.start()
    wait_until(lambda: g.state()["waiting"] == 3)
    member = threading.Thread(target=enter, args=("member", True))
    member.start()
    wait_until(lambda: g.state()["waiting_priority"] == 1)
    holder.let_go()
    for t in [*strangers, member]:
        t.join(10)
    assert order[0] == "member"
    assert sorted(order[1:]) == ["stranger0", "stranger1", "stranger2"]


def test_a_thread_holding_a_slot_passes_through_again():
    """Checking a password and re-hashing it with new parameters is one slot, not a deadlock."""
    g = gate(slots=1, queue_length=0)
    with g.admit(priority=False):
        with g.admit(priority=True):
            assert g.state()["running"] == 1
    assert g.state()["running"] == 0


def test_a_stranger_is_refused_at_once_when_the_queue_ahead_would_outlast_the_wait():
    now = [0.0]
    g = gate(slots=1, queue_length=100, wait=1.0, clock=lambda: now[0])
    with g.admit(priority=True):
        now[0] += 0.4  # one hash took 0.4 s
    holder = Holder(g)
    def wait_in_line():
        with g.admit(priority=False):
            pass

    waiters = [threading.Thread(target=wait_in_line) for _ in range(2)]
    for t in waiters:
        t.start()
    wait_until(lambda: g.state()["waiting"] == 2)
    # Two ahead and one running at 0.4 s each: 1.2 s > 1 s, so the third is told at once.
    assert g.refusal(priority=False) == 2
    holder.let_go()
    for t in waiters:
        t.join(5)


def _hash(password: bytes) -> None:
    hash_secret_raw(password, b"sixteen byte salt", time_cost=1, memory_cost=4096, parallelism=1,
                    hash_len=32, type=Type.ID)


def test_members_get_through_a_flood_of_strangers():
    """In process: 24 strangers' threads hash non-stop; 30 members' sign-ins all get a slot.

    The strangers alone would keep every slot busy forever; the members (device cookies: the
    priority lane) are admitted ahead of them, while most strangers are told to come back.
    """
    g = gate(slots=2, queue_length=2, wait=0.5, priority_wait=10.0)
    stop = threading.Event()
    refused = []

    def stranger():
        while not stop.is_set():
            try:
                with g.admit(priority=False):
                    _hash(b"a wrong guess")
            except Full as full:
                refused.append(full.retry_after)
                time.sleep(0.001)

    flood = [threading.Thread(target=stranger) for _ in range(24)]
    for t in flood:
        t.start()
    wait_until(lambda: g.state()["refused"] > 0)
    members_in, member_refused = [], []

    def member():
        try:
            with g.admit(priority=True):
                _hash(b"the right password")
            members_in.append(1)
        except Full:
            member_refused.append(1)

    for _ in range(3):
        wave = [threading.Thread(target=member) for _ in range(10)]
        for t in wave:
            t.start()
        for t in wave:
            t.join(30)
    stop.set()
    for t in flood:
        t.join(10)
    assert len(members_in) == 30 and member_refused == []
    assert len(refused) > 30 and min(refused) >= 1


def test_serve_shares_the_cpus_among_its_workers(monkeypatch):
    from twostep import server

    monkeypatch.setattr(server.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert [server.hash_slots(w) for w in (1, 2, 3, 4, 8)] == [4, 2, 2, 1, 1]


def test_serve_keeps_a_thread_free_for_members():
    from twostep import server

    assert [server.hash_queue_length(threads, 1) for threads in (1, 2, 4, 8)] == [1, 1, 2, 6]
    assert server.hash_queue_length(4, 2) == 1


def test_serve_keeps_the_queue_for_a_thread_short(monkeypatch):
    """A worker accepts a few connections per thread, not gunicorn's thousand: a kept-alive
    member's request never queues behind a flood's worth of strangers' connections."""
    from twostep import server

    seen = {}

    class Fake:
        def __init__(self, options):
            seen.update(options)

        def run(self):
            pass

    monkeypatch.setattr(server, "Server", Fake)
    server.serve("127.0.0.1", 8000, workers=2, threads=16, trusted_proxies=[], log_level="warning",
                 ready_line="", queue_worker=False)
    assert seen["threads"] == 16 and seen["worker_connections"] == 64
    # Room left for kept-alive connections beside the busy threads (gunicorn's max_keepalived).
    assert seen["worker_connections"] - seen["threads"] > 0
