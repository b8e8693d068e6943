"""Device cookies: a browser that signed in as a login before is known when that login is typed again.

OWASP's "device cookies" against brute force, the idea ASVS 5.0 §6.3 (V2.2 in 4.0) points to:
after a full sign-in (both factors, where there are two) the browser gets a cookie signed with
the secret key that names the login only by a keyed hash, with a random id of its own. When the
same login is typed in that browser again:

- its password check waits in the priority lane of the hashing gate (services/admission.py), so
  a flood of guesses from elsewhere waits and the member does not;
- its wrong passwords count against the cookie's own key (`dev:<id>`), not against the address
  and login, so strangers' guesses from the member's address (a shared NAT) do not lock the
  member out — and the member's own mistakes are still throttled, by the same delays.

The cookie proves nothing else: the password (and the second factor) are checked as always.
It holds up to five logins, newest first (a shared computer). A forged, altered or expired
cookie, or one for another login, is simply not recognised: the browser is a stranger.
Signed with django.core.signing under SECRET_KEY, accepted under SECRET_KEY_FALLBACKS too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from .. import crypto

COOKIE_NAME = "twostep_device"
_SALT = "twostep.device_cookie"
_PURPOSE = "twostep.device_login"
MAX_LOGINS = 5
_ID_BYTES = 12


@dataclass(frozen=True)
class Device:
    id: str  # the cookie's random id for this login: its throttle key


def _login_digests(login: str) -> list[str]:
    """The login's keyed hash under every secret key, newest first (no login in clear)."""
    return [d[:32] for d in crypto.secret_digests(_PURPOSE, login.strip().lower())]


def _entries(value: str | None) -> list[list[str]]:
    if not value or not isinstance(value, str) or len(value) > 4096:
        return []
    try:
        data = signing.loads(value, salt=_SALT, max_age=settings.TWOSTEP_DEVICE_COOKIE_DAYS * 86400)
    except (signing.BadSignature, ValueError, TypeError):
        return []
    entries = data.get("d") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    return [e for e in entries[:MAX_LOGINS]
            if isinstance(e, list) and len(e) == 2 and all(isinstance(p, str) for p in e)]


def valid(value: str | None) -> bool:
    """Tell whether this is a device cookie this server signed, not expired (for any login).

    Cheap (an HMAC, no database): the early refusal (early_refusal.py) lets such a browser on
    to the sign-in, where `recognise` decides for the login typed.
    """
    return bool(_entries(value))


def recognise(value: str | None, login: str) -> Device | None:
    """Return the device this cookie is for `login`, or None (no cookie, forged, expired, another login)."""
    if not login or not isinstance(login, str):
        return None
    entries = _entries(value)
    if not entries:
        return None
    digests = set(_login_digests(login))
    for digest, device_id in entries:
        if digest in digests:
            return Device(id=device_id)
    return None


def issue(value: str | None, login: str) -> str:
    """Return the cookie after a full sign-in as `login`: that login first, its id kept if it had one."""
    digest = _login_digests(login)[0]
    known = recognise(value, login)
    others = [e for e in _entries(value) if e[0] not in set(_login_digests(login))]
    device_id = known.id if known is not None else secrets.token_hex(_ID_BYTES)
    entries = [[digest, device_id], *others][:MAX_LOGINS]
    return signing.dumps({"d": entries}, salt=_SALT, compress=False)


def max_age() -> int:
    return settings.TWOSTEP_DEVICE_COOKIE_DAYS * 86400
