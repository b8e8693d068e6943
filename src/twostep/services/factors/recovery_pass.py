"""The admin's one-time sign-in pass, used at the second step in place of an authenticator.

Issuing and approving passes is the admins' business (services/recovery_passes.py); this slice
only spends one: an approved, unused, unexpired pass of this user, by one conditional UPDATE.
"""

from __future__ import annotations

import re

from ... import crypto
from ...models import RecoveryRequest, User
from .. import audit, notifications
from ..audit import Origin, Type
from . import Verified

METHOD = "recovery_pass"
AMR = ("kba",)
# The pass's format is the slice's (the admins' side makes passes of it): the slice then needs
# nothing from services/recovery_passes.py, which reaches the sign-in flow.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # 31 symbols, no 0/O, 1/I/L
SYMBOLS = 16  # 16 × log2(31) ≈ 79 bits (≥ 64: NIST SP 800-63B-4 §4.2.1.1)


def normalize(code: str) -> str | None:
    """Return the pass as stored for hashing, or None when it cannot be one."""
    if not isinstance(code, str):
        return None
    typed = re.sub(r"[\s-]", "", code).upper()
    if len(typed) != SYMBOLS or any(c not in ALPHABET for c in typed):
        return None
    return typed


def digest(code: str) -> str:
    """Return the stored form of a normalised pass, under the newest secret key."""
    return crypto.secret_digest("twostep.recovery_pass", code)


def digests(code: str) -> list[str]:
    """Return the pass's digest under every secret key: a pass outlives a key rotation."""
    return crypto.secret_digests("twostep.recovery_pass", code)


def offered(user, facts) -> bool:
    return facts.recovery_pass


def verify(user: User, code, now, origin: Origin) -> Verified | None:
    typed = normalize(code)
    won = typed is not None and RecoveryRequest.objects.filter(
        user=user, kind=RecoveryRequest.Kind.SIGN_IN_PASS, token_digest__in=digests(typed),
        approved_at__isnull=False, used_at__isnull=True, cancelled_at__isnull=True, expires_at__gt=now,
    ).update(used_at=now) == 1
    if not won:
        return None
    audit.record(Type.RECOVERY_PASS_USED, user=user, actor=user, origin=origin)
    notifications.notify(user, "recovery_pass_used", ip=origin.ip)
    return Verified(METHOD, AMR, recovery=True)
