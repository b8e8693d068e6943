"""Backup codes: a set of single-use codes for the day no authenticator is at hand.

Stored only as HMAC(key, salt ‖ code), so checking one is one indexed look-up; spent by one
conditional UPDATE, so of any number of concurrent requests with one code exactly one wins
(Keycloak #26106). A sign-in with one is a recovery: the person is offered a new authenticator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from ... import crypto
from ...core import backup_codes as codes_core
from ...core import clock
from ...core.errors import MalformedCode
from ...models import BackupCode, BackupCodeSet, User
from .. import audit, notifications
from ..audit import Origin, Type
from ..errors import TwoFactorDisabled
from ..reauth import confirm_password
from . import MalformedProof, Verified

METHOD = "backup_code"
# RFC 8176 has no value for a look-up secret; "kba" is the nearest, as the docs say.
AMR = ("kba",)


@dataclass(frozen=True)
class NewCodes:
    codes: list[str]  # formatted xxxx-xxxx-xxxx-xxxx; shown once, never stored
    generated_at: datetime


def offered(user, facts) -> bool:
    return bool(facts.kinds) and facts.backup_codes > 0


def remaining(user) -> int:
    """Return how many unused codes the user has."""
    return BackupCode.objects.filter(user=user, used_at__isnull=True).count()


def current_set(user) -> BackupCodeSet | None:
    """Return the user's current set (salt, size, when made, when saved), or None."""
    return BackupCodeSet.objects.filter(user=user).first()


def is_low(count: int) -> bool:
    return count <= settings.TWOSTEP_BACKUP_CODES_LOW


def replace_codes(user: User, now: datetime) -> NewCodes:
    """Store a new set in place of the old (caller holds a transaction); return it once."""
    plain = codes_core.make_codes()
    salt = codes_core.new_salt()
    BackupCode.objects.filter(user=user).delete()
    BackupCode.objects.bulk_create(
        BackupCode(user=user, digest=crypto.code_digest(code, salt)) for code in plain
    )
    BackupCodeSet.objects.update_or_create(
        user=user, defaults={"salt": salt, "size": len(plain), "generated_at": now, "saved_at": None})
    from .. import trusted_browsers

    # A new set is made when in doubt: browsers remembered before it must pass the second step again.
    trusted_browsers.forget_on_new_codes(user)
    return NewCodes([codes_core.format_code(c) for c in plain], now)


def remove_all(user: User) -> None:
    """Delete the user's codes and their set (caller holds a transaction)."""
    BackupCode.objects.filter(user=user).delete()
    BackupCodeSet.objects.filter(user=user).delete()


def generate(user: User, password: str | None, origin: Origin, *, fresh: bool = False) -> NewCodes:
    """Make a new set of codes for a user with 2FA on; the old set stops working at once."""
    from . import enabled

    if not enabled(user):
        raise TwoFactorDisabled()
    confirm_password(user, password, origin, fresh=fresh)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        new = replace_codes(user, clock.utcnow())
        audit.record(Type.BACKUP_CODES_GENERATED, user=user, actor=user, origin=origin)
        notifications.notify(user, "backup_codes_generated", ip=origin.ip)
    return new


def spend(user: User, text: str, now: datetime) -> bool:
    """Spend one code: True if it was an unused code of this user, now used.

    Raises MalformedCode for a typo (wrong shape or check symbol).
    """
    code = codes_core.normalize_code(text)
    code_set = current_set(user)
    if code_set is None:
        return False
    digests = crypto.code_digests(code, code_set.salt)
    return BackupCode.objects.filter(
        user=user, digest__in=digests, used_at__isnull=True
    ).update(used_at=now) == 1


def verify(user: User, code, now, origin: Origin) -> Verified | None:
    """Spend a backup code; tell the person how many are left (audit and mail)."""
    if not isinstance(code, str):
        return None
    try:
        if not spend(user, code, now):
            return None
    except MalformedCode:
        raise MalformedProof(_("That is not a backup code: check it for typos.")) from None
    return Verified(METHOD, AMR, recovery=True)


def announce_use(user: User, origin: Origin, left: int, purpose: str) -> None:
    """Audit a spent code and mail the user how many are left (warning when few)."""
    audit.record(Type.BACKUP_CODE_USED, user=user, actor=user, origin=origin, remaining=left, purpose=purpose)
    notifications.notify(user, "backup_code_used", remaining=left, purpose=purpose, ip=origin.ip)
