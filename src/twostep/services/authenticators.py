"""A user's authenticators: list, add (an app or a key), rename, remove, switch 2FA off.

What is the same for every kind lives here: names unique per user, the first authenticator
making the backup codes, the security stamp that ends other sessions, the audit event and the
mail. The kind's own work (a QR code and a first code; a WebAuthn ceremony) is its slice's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from ..core import clock
from ..models import Authenticator, User
from . import audit, notifications, oidc, throttling
from .audit import Origin, Type
from .errors import (
    InvalidCode,
    InvalidConfirmationCode,
    InvalidInput,
    NoPendingSetup,
    NotFound,
    TwoFactorDisabled,
    TwoFactorRequired,
)
from .factors import backup_codes, enabled, slice_for
from .factors import totp as totp_factor
from .reauth import confirm_password

MAX_NAME = 60
Kind = Authenticator.Kind


@dataclass(frozen=True)
class Added:
    authenticator: Authenticator
    replaced: bool  # older apps were removed (the v1 "replace" and the lost-phone path)
    backup_codes: backup_codes.NewCodes | None  # made now, shown once


def is_required(user) -> bool:
    """Tell whether the user's account forces 2FA now."""
    from .accounts import two_factor_required

    return two_factor_required(user.account)


def listing(user) -> list[Authenticator]:
    """Return the user's confirmed authenticators, oldest first."""
    return list(Authenticator.objects.filter(user=user, confirmed=True).order_by("confirmed_at", "pk"))


def describe(authenticator: Authenticator) -> str:
    """Say what kind of thing it is, for a person ("Authenticator app", "Passkey", …)."""
    return slice_for(authenticator.kind).describe(authenticator)


def clean_name(name, default) -> str:
    """Return a name fit to show (trimmed, one line, not too long), or the default."""
    if name is not None and not isinstance(name, str):
        raise InvalidInput(_("A name is text."))
    name = " ".join((name or "").split())
    if len(name) > MAX_NAME:
        raise InvalidInput(_("Keep the name under 60 characters."))
    return name or str(default)


def _free_name(user: User, wanted: str, exclude_pk=None) -> str:
    """Return `wanted`, or `wanted 2`, `wanted 3`, … — the first not taken (user's row locked)."""
    taken = set(Authenticator.objects.filter(user=user, confirmed=True).exclude(pk=exclude_pk)
                .annotate(lower=Lower("name")).values_list("lower", flat=True))
    name, n = wanted, 1
    while name.lower() in taken:
        n += 1
        suffix = f" {n}"
        name = wanted[: MAX_NAME - len(suffix)] + suffix
    return name


# Adding ------------------------------------------------------------------------------------

def start_app(user: User, password: str | None, origin: Origin, *, name=None,
              fresh: bool = False) -> totp_factor.Setup:
    """Start adding an authenticator app: a key and QR code, pending until its first code.

    Any authenticator already confirmed keeps working meanwhile.
    """
    name = clean_name(name, totp_factor.DEFAULT_NAME)
    confirm_password(user, password, origin, fresh=fresh)
    with transaction.atomic():
        # Lock the user row: a double click queues instead of failing on one_pending_authenticator.
        user = User.objects.select_for_update().get(pk=user.pk)
        return totp_factor.start_enrolment(user, name)


def pending_app(user: User) -> totp_factor.Setup | None:
    return totp_factor.pending(user)


def confirm_app(user: User, code: str, origin: Origin, *, replace_apps: bool = False,
                new_codes: bool = False, authenticator_id=None) -> Added:
    """Confirm the pending app with its first code; it joins the user's authenticators.

    `replace_apps` removes the user's other apps (the v1 routes, and the lost-phone path);
    keys stay. `new_codes` makes a fresh set of backup codes (the lost-phone path).
    """
    row = Authenticator.objects.filter(user=user, kind=Kind.TOTP, confirmed=False).first()
    if row is None or (authenticator_id is not None and str(row.pk) != str(authenticator_id)):
        raise NoPendingSetup()
    step = totp_factor.check_first_code(row, code)
    return _confirm(user, row, origin, replace_apps=replace_apps, new_codes=new_codes,
                    fields={"last_step": step})


def add_confirmed(user: User, row_fields: dict, origin: Origin, *, new_codes: bool = False) -> Added:
    """Store an authenticator whose kind proved it at once (a WebAuthn registration)."""
    now = clock.utcnow()
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        first = not enabled(user)
        name = _free_name(user, row_fields.pop("name"))
        row = Authenticator.objects.create(user=user, name=name, confirmed=True, confirmed_at=now,
                                           last_used_at=now, **row_fields)
        return _finish(user, row, origin, now, first=first, replaced=False, new_codes=new_codes)


def _confirm(user: User, row: Authenticator, origin: Origin, *, fields: dict, replace_apps: bool = False,
             new_codes: bool = False) -> Added:
    now = clock.utcnow()
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        first = not enabled(user)
        replaced = False
        if replace_apps:
            replaced = Authenticator.objects.filter(user=user, kind=Kind.TOTP, confirmed=True).delete()[0] > 0
        name = _free_name(user, row.name, exclude_pk=row.pk)
        won = Authenticator.objects.filter(pk=row.pk, confirmed=False).update(
            confirmed=True, confirmed_at=now, last_used_at=now, name=name, **fields)
        if not won:  # a concurrent request confirmed it first
            transaction.set_rollback(True)
            raise NoPendingSetup()
        row.refresh_from_db()
        return _finish(user, row, origin, now, first=first, replaced=replaced, new_codes=new_codes)


def _finish(user: User, row: Authenticator, origin: Origin, now, *, first: bool, replaced: bool,
            new_codes: bool) -> Added:
    """What every new authenticator brings (inside the caller's transaction, user row locked)."""
    made = None
    if new_codes or first or backup_codes.remaining(user) == 0:
        made = backup_codes.replace_codes(user, now)
    throttling.reset_second_factor(user)
    # A new factor ends the user's other sessions (ASVS 7.4.3); the caller keeps this one.
    user.security_stamp = User._meta.get_field("security_stamp").default()
    user.save(update_fields=["security_stamp"])
    if first:
        event = Type.TWO_FACTOR_ENABLED
    elif replaced:
        event = Type.AUTHENTICATOR_REPLACED
    else:
        event = Type.AUTHENTICATOR_ADDED
    audit.record(event, user=user, actor=user, origin=origin, authenticator=row.name, kind=row.kind)
    if made:
        audit.record(Type.BACKUP_CODES_GENERATED, user=user, actor=user, origin=origin)
    notifications.notify(user, event.value, ip=origin.ip, authenticator=row.name)
    return Added(row, replaced, made)


# Changing and removing ---------------------------------------------------------------------

def _own(user: User, authenticator_id) -> Authenticator:
    try:
        pk = int(authenticator_id)
    except (TypeError, ValueError):
        raise NotFound(_("No such authenticator.")) from None
    row = Authenticator.objects.filter(pk=pk, user=user, confirmed=True).first()
    if row is None:  # another user's authenticator is "not found" too (ASVS 8.2.2)
        raise NotFound(_("No such authenticator."))
    return row


def rename(user: User, authenticator_id, name, origin: Origin) -> Authenticator:
    """Give one of the user's authenticators a new name (unique among theirs)."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        row = _own(locked, authenticator_id)
        wanted = clean_name(name, row.name)
        if wanted.lower() != row.name.lower() and Authenticator.objects.filter(
                user=locked, confirmed=True, name__caseless=wanted).exists():
            raise InvalidInput(_("You already have an authenticator with that name."))
        if wanted != row.name:
            old, row.name = row.name, wanted
            row.save(update_fields=["name"])
            audit.record(Type.AUTHENTICATOR_RENAMED, user=locked, actor=locked, origin=origin,
                         authenticator=wanted, old_name=old)
    return row


def remove(user: User, authenticator_id, password: str | None, origin: Origin, *, fresh: bool = False) -> bool:
    """Remove one authenticator (password again); the last one switches 2FA off.

    Returns whether two-factor authentication is still on. Removing the last one is refused
    where the account requires 2FA.
    """
    row = _own(user, authenticator_id)
    confirm_password(user, password, origin, fresh=fresh)
    with transaction.atomic():
        locked = User.objects.select_for_update().select_related("account").get(pk=user.pk)
        row = _own(locked, authenticator_id)
        others = Authenticator.objects.filter(user=locked, confirmed=True).exclude(pk=row.pk).exists()
        if not others:
            if is_required(locked):
                raise TwoFactorRequired(_("Your organisation requires two-factor authentication: add "
                                          "another authenticator before removing your last one."))
            remove_second_factor(locked)
            audit.record(Type.TWO_FACTOR_DISABLED, user=locked, actor=locked, origin=origin,
                         authenticator=row.name)
            notifications.notify(locked, "two_factor_disabled", actor=locked.login, ip=origin.ip)
            return False
        row.delete()
        locked.security_stamp = User._meta.get_field("security_stamp").default()
        locked.save(update_fields=["security_stamp"])
        audit.record(Type.AUTHENTICATOR_REMOVED, user=locked, actor=locked, origin=origin,
                     authenticator=row.name, kind=row.kind)
        notifications.notify(locked, "authenticator_removed", ip=origin.ip, authenticator=row.name)
    return True


def remove_second_factor(user: User) -> None:
    """Delete every authenticator and code, unlock, end sessions (caller holds a transaction)."""
    Authenticator.objects.filter(user=user).delete()
    backup_codes.remove_all(user)
    user.second_factor_failures = 0
    user.second_factor_blocked_until = None
    user.security_stamp = User._meta.get_field("security_stamp").default()
    user.save(update_fields=["second_factor_failures", "second_factor_blocked_until", "security_stamp"])
    oidc.revoke_user_tokens(user, reason="two_factor_disabled")  # what applications were told is void


def disable(user: User, password: str | None, code: str, origin: Origin, *, fresh: bool = False) -> None:
    """Switch 2FA off with the password (unless `fresh`) and a current code, unless required."""
    from . import signin

    if not enabled(user):
        raise TwoFactorDisabled()
    if is_required(user):
        raise TwoFactorRequired()
    confirm_password(user, password, origin, fresh=fresh)
    try:
        signin.check_code(user.pk, code, origin, purpose="disable")
    except InvalidCode as wrong:  # a wrong code here is bad input for the change, not a failed sign-in
        raise InvalidConfirmationCode(wrong.message, **wrong.extra) from None
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        remove_second_factor(user)
        audit.record(Type.TWO_FACTOR_DISABLED, user=user, actor=user, origin=origin)
        notifications.notify(user, "two_factor_disabled", actor=user.login, ip=origin.ip)


def last_used(user: User) -> datetime | None:
    return Authenticator.objects.filter(user=user, confirmed=True).order_by("-last_used_at") \
        .values_list("last_used_at", flat=True).first()
