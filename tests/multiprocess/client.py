"""A browser's side of the two-process suite: its cookies and address, threads fired together, codes."""

from __future__ import annotations

import http.cookiejar
import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyotp

if TYPE_CHECKING:
    from .cluster import Server

PASSWORD = "correct horse battery staple"
API = "/api/v1"


@dataclass
class Answer:
    status: int
    body: dict
    headers: dict = field(repr=False)

    @property
    def error(self) -> str | None:
        return self.body.get("error")


class Client:
    """One browser: its cookies go to whichever process it calls, as behind a load balancer.

    Requests arrive through the trusted proxy (127.0.0.1) with `address` in X-Forwarded-For, so
    each test throttles its own client address and never meets another test's counters.
    """

    def __init__(self, address: str):
        self.address = address
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def call(self, server: Server, method: str, path: str, body: dict | None = None) -> Answer:
        headers = {"X-Forwarded-For": self.address, "Accept-Language": "en"}
        data = None
        if method != "GET":
            if self.cookie("csrftoken") is None:
                self.call(server, "GET", "/auth/session")
            headers["X-CSRFToken"] = self.cookie("csrftoken") or ""
            headers["Content-Type"] = "application/json"
            data = json.dumps(body or {}).encode()
        request = urllib.request.Request(server.url + API + path, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=60) as response:
                return Answer(response.status, json.loads(response.read() or b"{}"), dict(response.headers))
        except urllib.error.HTTPError as error:
            with error:
                raw = error.read()
            return Answer(error.code, json.loads(raw) if raw.startswith(b"{") else {"raw": raw.decode()},
                          dict(error.headers))

    def get(self, server: Server, path: str) -> Answer:
        return self.call(server, "GET", path)

    def post(self, server: Server, path: str, body: dict | None = None) -> Answer:
        return self.call(server, "POST", path, body)

    def login(self, server: Server, login: str, password: str = PASSWORD) -> Answer:
        return self.post(server, "/auth/login", {"login": login, "password": password})

    def second_factor(self, server: Server, method: str, code: str) -> Answer:
        return self.post(server, "/auth/second-factor", {"method": method, "code": code})

    def stage(self, server: Server) -> str:
        return self.get(server, "/auth/session").body["stage"]


_addresses = itertools.count(1)
# Redis outlives the run: another run's counters must not meet ours. Four hex digits, the first
# never 0: the server writes an address in its canonical form (2001:db8:a3f::1, not
# 2001:db8:0a3f::1), which the keys, and so the glob below, must match.
_RUN = format(0x1000 + secrets.randbelow(0xF000), "x")
# Matches every Redis key that names an address of this run.
RUN_ADDRESSES_GLOB = f"*2001:db8:{_RUN}::*"


def new_address() -> str:
    """Return a client address (IPv6 documentation range) no other test or run uses."""
    return f"2001:db8:{_RUN}::{next(_addresses):x}"


def fire_together(calls) -> list[Answer]:
    """Run the zero-argument callables in threads released at one moment; return their answers."""
    barrier = threading.Barrier(len(calls))
    answers: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=30)
            answers[i] = call()
        except BaseException as error:  # noqa: BLE001 — the test reports every outcome
            answers[i] = error

    threads = [threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    assert all(isinstance(a, Answer) for a in answers), answers
    return answers


# TOTP ----------------------------------------------------------------------------------------

def settled_step(margin: float = 3.0) -> int:
    """Return the current 30 s step, first waiting for the next one if fewer than `margin` s remain.

    The servers run on this machine's clock, so the codes computed here for this step and its
    neighbours stay inside their ±1 step window while a test uses them.
    """
    if 30 - time.time() % 30 < margin:
        time.sleep(30 - time.time() % 30 + 0.1)
    return int(time.time() // 30)


@dataclass
class Factor:
    """A user's confirmed authenticator app and the backup codes shown at enrolment."""

    login: str
    secret: str
    backup_codes: list[str]
    confirmed_step: int  # spent by the confirmation: sign-ins start at the step after it

    def at(self, step: int) -> str:
        return pyotp.TOTP(self.secret).at(step * 30)

    def wrong_code(self) -> str:
        """Return six digits that are no code of the steps around now."""
        now = int(time.time() // 30)
        taken = {self.at(s) for s in range(now - 2, now + 3)}
        return next(c for c in (f"{n:06d}" for n in range(100000, 1000000, 7919)) if c not in taken)


