"""Two processes behave as one: every queued mail is sent once, with the queue workers of A and B both running.

Password reset requests for one user go to A and B in turn. Each becomes a task, then a queued
mail, each taken by whichever worker comes first; both send to the one SMTP server of the test.
Then every mail gets two more wake-ups at once, as a worker's crash and `recover_stalled`, or a
task delivered twice, would give it: both workers run them, and only the mail's own claim keeps
it from being sent again.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
from collections import Counter

import pytest

from .client import Client, new_address

pytestmark = pytest.mark.multiprocess

MAILS = 20
WAIT_SECONDS = 45  # for the whole test; both workers look for tasks every second


def settled(cluster, login: str, deadline: float, done) -> dict:
    """Poll the shared queue until done(state) holds (and no task waits to run); return that state."""
    while True:
        state = json.loads(cluster.probe("look", login))
        if state["waiting_tasks"] == 0 and done(state):
            return state
        assert time.monotonic() < deadline, f"the queue did not settle in {WAIT_SECONDS} s: {state}"
        time.sleep(0.5)


def delivered_message_ids(smtp_server, address: str) -> list[str]:
    messages = [email.message_from_bytes(e.content, policy=email.policy.default)
                for e in list(smtp_server.handler.envelopes) if e.rcpt_tos == [address]]
    return [str(m["Message-ID"]) for m in messages]


def mail_id(message_id: str) -> int:
    """Return the Mail row a Message-ID names (<twostep.ID.TIMESTAMP@host>)."""
    return int(re.fullmatch(r"<twostep\.(\d+)\.\d+@[^>]+>", message_id)[1])


def test_every_queued_mail_is_sent_once(cluster, smtp_server):
    deadline = time.monotonic() + WAIT_SECONDS
    servers = [cluster.a, cluster.b]
    for n in range(MAILS):
        # A new address each time: the reset throttle counts per address.
        asked = Client(new_address()).post(servers[n % 2], "/auth/password-reset", {"login": "max"})
        assert asked.status == 200, asked

    def resets(state) -> list[dict]:
        return [m for m in state["mails"] if m["kind"] == "password_reset"]

    state = settled(cluster, "max", deadline, lambda s: len(resets(s)) == MAILS
                    and all(m["status"] == "sent" for m in resets(s)))
    reset_ids = [m["id"] for m in resets(state)]
    # Two more wake-ups for every mail, all waiting at once for both workers.
    cluster.probe("wake", "2", *map(str, reset_ids))
    state = settled(cluster, "max", deadline, lambda s: True)

    arrived = delivered_message_ids(smtp_server, "max@acme.example")
    assert len(arrived) == len(set(arrived)), Counter(arrived).most_common(3)
    assert sorted(map(mail_id, arrived)) == [m["id"] for m in state["mails"]]  # each of max's mails once
    assert len(reset_ids) == MAILS and set(reset_ids) <= set(map(mail_id, arrived))
    assert all(m["status"] == "sent" for m in state["mails"]), state["mails"]
    print(f"{len(state['workers'])} queue workers delivered mail")
