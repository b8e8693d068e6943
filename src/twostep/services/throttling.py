"""Throttles: per user for second factors; per (login, address) and per address for passwords.

Counters live in the database, so every process sees the same numbers and a restarted flow,
a new session or a new address does not reset them (Keycloak #26177). Delays grow by doubling
after a number of free attempts; the second factor locks at a hard limit (NIST 800-63B §3.2.2).
A throttled attempt is refused before its code or password is looked at.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from django.conf import settings

from .errors import Throttled
from .throttle_store import store

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
    user.second_factor_failures = 0
    user.second_factor_blocked_until = None
    user.save(update_fields=["second_factor_failures", "second_factor_blocked_until"])


# Passwords -------------------------------------------------------------------------------

def password_keys(login: str, ip: str | None) -> tuple[str, str]:
    """Return the throttle keys for a login from an address: (login+address, address)."""
    address = ip or "unknown"
    login_hash = hashlib.sha256(login.strip().lower().encode("utf-8")).hexdigest()[:32]
    return f"pw:{address}:{login_hash}", f"ip:{address}"


def _free_attempts(key: str) -> int:
    if key.startswith("ip:"):
        return settings.TWOSTEP_ADDRESS_FREE_ATTEMPTS
    return settings.TWOSTEP_PASSWORD_FREE_ATTEMPTS


def check_password_attempt(keys, now: datetime) -> None:
    """Raise Throttled if any key is blocked. Call before any password hash is computed."""
    wait = store().blocked_for(keys, now)
    if wait:
        raise Throttled(wait)


def record_password_failure(keys, now: datetime) -> None:
    """Count a failed password on each key; counters are forgotten after a quiet hour."""
    for key in keys:
        free = _free_attempts(key)
        store().add_failure(key, now, lambda failures, free=free: delay_after(failures, free))


def reset_password(keys) -> None:
    """Forget failures for the (login, address) key after a right password."""
    store().clear([k for k in keys if k.startswith("pw:")])
