"""Backup codes: a set of single-use codes for the day no authenticator is at hand.

Stored only as HMAC(key, salt ‖ code), so checking one is one indexed look-up; spent by one
conditional UPDATE, so of any number of concurrent requests with one code exactly one wins
(Keycloak #26106). A sign-in with one is a recovery: the person is offered a new authenticator.

A new set counts as kept only once the person says so (`confirm_saved` sets `saved_at`); until
then every transport says the set is unsaved. The pages may show an unsaved set again for a
while in the session that made it: `seal_for_session` gives it encrypted for that session
alone, and `unsealed` hands it back only while it is still the user's current, unsaved set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from ... import crypto
from ...core import backup_codes as codes_core
from ...core import clock
from ...core.errors import MalformedCode
from ...models import BackupCode, BackupCodeSet, User
from ...prepared import PreparedQuery
from .. import audit, notifications
from ..audit import Origin, Type
from ..errors import InvalidCode, TwoFactorDisabled
from ..reauth import confirm_password
from . import MalformedProof, Verified

METHOD = "backup_code"
# RFC 8176 has no value for a look-up secret; "kba" is the nearest, as the docs say.
AMR = ("kba",)
# How long the session that made a set may show it again until it is confirmed as saved.
SHOWN_AGAIN_MINUTES = 30


class CodeAlreadyUsed(InvalidCode):
    """A backup code of this user's current set that was spent before: told apart for the person.

    Only someone past the password step reaches it, and "used already" is what they must know
    (which code is gone, that someone else may have used it). It counts as a failure all the same.
    """

    code = "code_already_used"
    default_message = _("That backup code was already used: each code works once. Try another of your codes.")


@dataclass(frozen=True)
class NewCodes:
    codes: list[str]  # formatted xxxx-xxxx-xxxx-xxxx; shown once, never stored
    generated_at: datetime


def offered(user, facts) -> bool:
    return bool(facts.kinds) and facts.backup_codes > 0


# Compiled once (prepared.py): the pages and the API read them on every visit.
_UNUSED = PreparedQuery(lambda user_id: BackupCode.objects.filter(user_id=user_id, used_at__isnull=True)
                        .values("user_id").annotate(count=Count("pk")).values_list("count"))
_CURRENT_SET = PreparedQuery(lambda user_id: BackupCodeSet.objects.filter(user_id=user_id).order_by("pk")[:1])


def remaining(user) -> int:
    """Return how many unused codes the user has."""
    rows = _UNUSED.values(user.pk)
    return rows[0][0] if rows else 0


def current_set(user) -> BackupCodeSet | None:
    """Return the user's current set (salt, size, when made, when saved), or None."""
    return _CURRENT_SET.first(user.pk)


def is_low(count: int) -> bool:
    return count <= settings.TWOSTEP_BACKUP_CODES_LOW


def is_saved(code_set: BackupCodeSet | None) -> bool | None:
    """Tell whether the person confirmed saving the set (None when there is no set)."""
    return None if code_set is None else code_set.saved_at is not None


def confirm_saved(user: User, origin: Origin | None = None, now: datetime | None = None) -> BackupCodeSet:
    """Record that the person has saved their current set; repeating it changes nothing.

    The first confirmation of a set is audited; one conditional UPDATE decides which that is,
    so of concurrent confirmations exactly one records the event. Raises TwoFactorDisabled when
    the user has no set of codes.
    """
    now = now or clock.utcnow()
    with transaction.atomic():
        saved = BackupCodeSet.objects.filter(user=user, saved_at__isnull=True).update(saved_at=now)
        code_set = current_set(user)
        if code_set is None:
            raise TwoFactorDisabled()
        if saved:
            audit.record(Type.BACKUP_CODES_SAVED, user=user, actor=user, origin=origin)
    return code_set


def seal_for_session(user: User, new: NewCodes) -> str:
    """Return the new set encrypted, for the session that made it to show it again."""
    return crypto.seal(json.dumps({"uid": user.pk, "codes": new.codes, "at": new.generated_at.isoformat()}))


def unsealed(user: User, token: str | None, now: datetime | None = None) -> NewCodes | None:
    """Return the set `seal_for_session` sealed, while it is the user's current set, unsaved and recent.

    None once it was saved or replaced, after SHOWN_AGAIN_MINUTES, for another user, or when the
    token cannot be read (a dropped encryption key, a tampered session).
    """
    if not token:
        return None
    try:
        sealed = json.loads(crypto.unseal(token))
        made = datetime.fromisoformat(sealed["at"])
    except (RuntimeError, ValueError, KeyError, TypeError):
        return None
    code_set = current_set(user)
    now = now or clock.utcnow()
    if (sealed.get("uid") != user.pk or code_set is None or code_set.saved_at is not None
            or code_set.generated_at != made or now - made > timedelta(minutes=SHOWN_AGAIN_MINUTES)):
        return None
    return NewCodes(list(sealed["codes"]), made)


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

    Raises MalformedCode for a typo (wrong shape or check symbol) and CodeAlreadyUsed for a code
    of the current set spent before. A wrong code and a used one cost the same two indexed
    queries, so the time taken tells nothing more than the message.
    """
    code = codes_core.normalize_code(text)
    code_set = current_set(user)
    if code_set is None:
        return False
    digests = crypto.code_digests(code, code_set.salt)
    if BackupCode.objects.filter(user=user, digest__in=digests, used_at__isnull=True).update(used_at=now) == 1:
        return True
    if BackupCode.objects.filter(user=user, digest__in=digests).exists():
        raise CodeAlreadyUsed()
    return False


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
