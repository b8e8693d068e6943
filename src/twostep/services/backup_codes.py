"""Backup codes: make a new set, count what is left, spend one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction

from .. import crypto
from ..core import backup_codes as codes_core
from ..core import clock
from ..models import BackupCode, User
from . import audit, notifications
from .audit import Origin, Type
from .errors import TwoFactorDisabled
from .reauth import confirm_password


@dataclass(frozen=True)
class NewCodes:
    codes: list[str]  # formatted xxxx-xxxx-xxxx-xxxx; shown once, never stored
    generated_at: datetime


def remaining(user) -> int:
    """Return how many unused codes the user has."""
    return BackupCode.objects.filter(user=user, used_at__isnull=True).count()


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
    user.backup_codes_salt = salt
    user.backup_codes_generated_at = now
    user.save(update_fields=["backup_codes_salt", "backup_codes_generated_at"])
    return NewCodes([codes_core.format_code(c) for c in plain], now)


def generate(user: User, password: str | None, origin: Origin, *, fresh: bool = False) -> NewCodes:
    """Make a new set of codes for a user with 2FA on; the old set stops working at once."""
    from .enrollment import is_enabled

    if not is_enabled(user):
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

    One conditional UPDATE: of any number of concurrent requests with the same code, exactly
    one sees a changed row (Keycloak #26106). Raises MalformedCode for a typo.
    """
    code = codes_core.normalize_code(text)
    if not user.backup_codes_salt:
        return False
    digests = crypto.code_digests(code, user.backup_codes_salt)
    spent = BackupCode.objects.filter(
        user=user, digest__in=digests, used_at__isnull=True
    ).update(used_at=now)
    return spent == 1
