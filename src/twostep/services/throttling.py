"""Throttles: per user for second factors; per (login, address) and per address for passwords.

Counters live in the database, so every process sees the same numbers and a restarted flow,
a new session or a new address does not reset them (Keycloak #26177). Delays grow by doubling
after a number of free attempts; the second factor locks at a hard limit (NIST 800-63B §3.2.2).
A throttled attempt is refused before its code or password is looked at, and a password
attempt is counted in the same atomic step that lets it through (throttle_store.py).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from . import admission
from .errors import Throttled
from .throttle_store import ADMITTED, BLOCKED, store

BASE_DELAY_SECONDS = 30


def delay_after(failures: int, free: int) -> int:
    """Return the seconds to wait after `failures` consecutive failures (0 while free)."""
    if failures <= free:
        return 0
    return min(BASE_DELAY_SECONDS * 2 ** min(failures - free - 1, 20), settings.TWOSTEP_MAX_DELAY_SECONDS)


def _seconds_until(moment: datetime | None, now: datetime) -> int:
    if moment is None or moment <= now:
        return 0
    return math.ceil((moment - now).total_seconds())


# Second factor ---------------------------------------------------------------------------

def second_factor_locked(user) -> bool:
    return user.second_factor_failures >= settings.TWOSTEP_SECOND_FACTOR_LOCK_AFTER


def check_second_factor(user, now: datetime) -> None:
    """Raise Throttled if `user` (a row locked by the caller) may not try a code now."""
    if second_factor_locked(user):
        raise Throttled(settings.TWOSTEP_MAX_DELAY_SECONDS, locked=True, message=_locked_message())
    wait = _seconds_until(user.second_factor_blocked_until, now)
    if wait:
        raise Throttled(wait)


def _locked_message():
    from django.utils.translation import gettext_lazy as _
    return _("Too many wrong codes: two-factor sign-in is locked for this user. "
             "Ask your account admin to let you back in.")


def record_second_factor_failure(user, now: datetime) -> None:
    """Count one failure on a row the caller holds locked, and set the next allowed time."""
    user.second_factor_failures += 1
    wait = delay_after(user.second_factor_failures, settings.TWOSTEP_SECOND_FACTOR_FREE_ATTEMPTS)
    user.second_factor_blocked_until = now + timedelta(seconds=wait) if wait else None
    user.save(update_fields=["second_factor_failures", "second_factor_blocked_until"])


def reset_second_factor(user) -> None:
    """Clear the count on a row the caller holds locked (no write when it is clear already)."""
    if not user.second_factor_failures and user.second_factor_blocked_until is None:
        return
    user.second_factor_failures = 0
    user.second_factor_blocked_until = None
    user.save(update_fields=["second_factor_failures", "second_factor_blocked_until"])


# Passwords -------------------------------------------------------------------------------

def password_keys(login: str, ip: str | None, device: str | None = None) -> tuple[str, ...]:
    """Return the throttle keys for a login from an address: (login+address, address).

    A browser with a device cookie for this login (services/devices.py) counts against the
    cookie alone, `dev:<id>`: strangers' guesses from its address do not lock it out, and its
    own wrong passwords earn the same delays as a (login, address) pair.
    """
    if device:
        return (f"dev:{device}",)
    address = ip or "unknown"
    login_hash = hashlib.sha256(login.strip().lower().encode("utf-8")).hexdigest()[:32]
    return f"pw:{address}:{login_hash}", f"ip:{address}"


def _free_attempts(key: str) -> int:
    if key.startswith("ip:"):
        return settings.TWOSTEP_ADDRESS_FREE_ATTEMPTS
    return settings.TWOSTEP_PASSWORD_FREE_ATTEMPTS


@dataclass(frozen=True)
class PasswordAttempt:
    """A password attempt admitted by the throttle and counted as a failure until it proves right."""

    keys: tuple[str, ...]
    at: datetime


# How long an attempt may wait for the attempts already being checked on its keys to finish
# (a password hash takes a fraction of a second), and the pauses between looks.
BUSY_WAIT_SECONDS = 5.0
_PAUSES = (0.01, 0.02, 0.05, 0.1)


def _delay_for(key: str, failures: int) -> int:
    return delay_after(failures, _free_attempts(key))


def reserve_password_attempt(keys, now: datetime) -> PasswordAttempt:
    """Admit one password attempt and count it as a failure, or raise Throttled — in one atomic step.

    Call before any password hash is computed; then `record_password_failure` or
    `record_password_success`. While other attempts on the same keys are being checked and
    their failing would block this one, it waits for them, so concurrent guesses get no more
    hashes than one-by-one guesses, and concurrent right passwords are not refused.
    """
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    for pause in itertools.chain(_PAUSES, itertools.repeat(_PAUSES[-1])):
        state, wait = store().reserve(keys, now, _delay_for)
        if state == ADMITTED:
            return PasswordAttempt(keys=tuple(keys), at=now)
        if state == BLOCKED:
            raise Throttled(wait)
        if time.monotonic() + pause > deadline:
            raise Throttled(1)
        with admission.aside():  # waiting for other requests' checks: they may need this turn
            time.sleep(pause)
    raise AssertionError("unreachable")


def record_password_failure(attempt: PasswordAttempt) -> None:
    """Keep a wrong password counted on each key and block for what the count earns."""
    store().fail(attempt.keys, attempt.at, _delay_for)


def record_password_success(attempt: PasswordAttempt) -> None:
    """After a right password: forget the (login, address) or device failures; give the address its attempt back."""
    cleared = ("pw:", "dev:")
    store().succeed([k for k in attempt.keys if k.startswith(cleared)],
                    [k for k in attempt.keys if not k.startswith(cleared)], attempt.at)


def release_password_attempt(attempt: PasswordAttempt) -> None:
    """Give a reserved attempt back untried (no password was checked): every key loses its one."""
    store().succeed([], list(attempt.keys), attempt.at)
