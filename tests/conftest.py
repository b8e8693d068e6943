"""Fixtures shared by every test: people, authenticators, a movable clock."""

from __future__ import annotations

import os

import pyotp
import pytest
from django.db import connection

from twostep.core import clock as clock_module
from twostep.services import accounts, authenticators
from twostep.services.audit import Origin

PASSWORD = "correct horse battery staple"
ORIGIN = Origin(ip="192.0.2.10", user_agent="pytest")


class Clock:
    """A clock the test moves by hand; TOTP steps and throttle delays both read it."""

    def __init__(self, start: float):
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@pytest.fixture
def clock(monkeypatch):
    # Start in the middle of a 30 s step so ±1 step arithmetic is unambiguous.
    fake = Clock((int(clock_module.now()) // 30) * 30 + 15.0)
    monkeypatch.setattr(clock_module, "now", fake)
    return fake


@pytest.fixture
def account(db):
    return accounts.create_account("Acme", "admin", "admin@acme.example", PASSWORD)


@pytest.fixture
def admin(account):
    return accounts.user_status("admin").user


@pytest.fixture
def make_user(account):
    def make(login="member", *, account_name="Acme", is_admin=False, email=None):
        return accounts.create_user(login, account_name, email or f"{login}@acme.example", PASSWORD,
                                    is_admin=is_admin)
    return make


@pytest.fixture
def member(make_user):
    return make_user("member")


class Enrolled:
    """A user with a confirmed authenticator: its secret and the backup codes shown once."""

    def __init__(self, user, secret, codes, clock):
        self.user, self.secret, self.codes, self._clock = user, secret, codes, clock

    def code(self, offset_steps: int = 0) -> str:
        return pyotp.TOTP(self.secret).at(self._clock() + 30 * offset_steps)


@pytest.fixture
def enroll(clock):
    def enroll_user(user):
        setup = authenticators.start_app(user, PASSWORD, ORIGIN)
        first = pyotp.TOTP(setup.secret).at(clock())
        confirmed = authenticators.confirm_app(user, first, ORIGIN)
        clock.advance(30)  # the first code is spent; later codes come from the next step
        return Enrolled(user, setup.secret, confirmed.backup_codes.codes, clock)
    return enroll_user


@pytest.fixture
def enrolled(member, enroll):
    return enroll(member)


@pytest.fixture
def admin_factor(admin, enroll):
    """The account admin's own authenticator: acting on other people's factors needs one."""
    return enroll(admin)


def web_sign_in(client, login: str, enrolled: Enrolled | None = None):
    """Sign in on the pages (with an app code when `enrolled` is given): a fresh second factor."""
    client.post("/login", {"login": login, "password": PASSWORD})
    if enrolled is not None:
        response = client.post("/login/code", {"code": enrolled.code()})
        assert response.status_code == 302, response.content
    return client


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def postgres_only(db):
    """Skip on SQLite (which serialises writers and hides races); fail if PostgreSQL was required."""
    if not is_postgres():
        if os.environ.get("TWOSTEP_REQUIRE_POSTGRES"):
            pytest.fail("this run must use PostgreSQL, but the database is " + connection.vendor)
        pytest.skip("race test: runs on PostgreSQL (make test-postgres, and always in CI)")


class MemorySession:
    """The sign-in flow's session storage, in memory: what signin_state.WebSession keeps in Django's."""

    def __init__(self):
        self.user = None
        self.state = None
        self.proof_data = {}
        self.stash = {}
        self.keys_issued = 0

    def signed_in_user(self):
        return self.user

    def held(self):
        return self.state

    def hold(self, state):
        self.keys_issued += 1
        self.proof_data, self.stash, self.state = {}, {}, state

    def drop_held(self):
        self.state = None

    def complete(self, user, proof):
        self.keys_issued += 1
        self.state, self.user, self.proof_data = None, user, proof

    def end(self):
        self.user, self.state, self.proof_data, self.stash = None, None, {}, {}

    def proof(self):
        return self.proof_data

    def update_proof(self, **changes):
        self.proof_data = {**self.proof_data, **changes}

    def put(self, key, value):
        self.stash[key] = value

    def take(self, key):
        return self.stash.pop(key, None)

    def with_saved(self, write):
        write(None)  # no session row: at once

    def save(self):
        pass  # kept in memory


@pytest.fixture
def memory_session():
    return MemorySession()
@pytest.fixture
def hashes(monkeypatch):
    """Count every password hash computed, in any thread (a check, or the dummy for an unknown login)."""
    from tests.hashers import FastArgon2PasswordHasher

    calls = []  # list.append is atomic: safe from many threads
    verify, encode = FastArgon2PasswordHasher.verify, FastArgon2PasswordHasher.encode
    monkeypatch.setattr(FastArgon2PasswordHasher, "verify",
                        lambda self, password, encoded: calls.append("verify") or verify(self, password, encoded))
    monkeypatch.setattr(FastArgon2PasswordHasher, "encode",
                        lambda self, password, salt: calls.append("encode") or encode(self, password, salt))
    return calls
