"""Enrolment: set up an authenticator app, confirm it with a first code, replace it, remove it."""

from __future__ import annotations

from dataclasses import dataclass

import segno
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import crypto
from ..core import clock, totp
from ..core.errors import MalformedCode
from ..models import BackupCode, TotpDevice, User
from . import audit, backup_codes, notifications, throttling
from .audit import Origin, Type
from .errors import InvalidCode, NoPendingSetup, TwoFactorDisabled, TwoFactorRequired
from .reauth import confirm_password


@dataclass(frozen=True)
class Setup:
    secret: str
    otpauth_uri: str
    qr_svg: str

    @property
    def grouped_secret(self) -> str:
        return totp.group_secret(self.secret)


@dataclass(frozen=True)
class Confirmed:
    replaced: bool
    backup_codes: backup_codes.NewCodes | None


def is_enabled(user) -> bool:
    """Tell whether the user has a confirmed authenticator."""
    return TotpDevice.objects.filter(user=user, confirmed=True).exists()


def is_required(user) -> bool:
    """Tell whether the user's account forces 2FA now (accounts.two_factor_required)."""
    from .accounts import two_factor_required

    return two_factor_required(user.account)


def _setup_for(user: User, secret: str) -> Setup:
    uri = totp.provisioning_uri(secret, user.login, settings.TWOSTEP_ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=4, title=_("QR code for your authenticator app"))
    return Setup(secret=secret, otpauth_uri=uri, qr_svg=svg)


def start_setup(user: User, password: str | None, origin: Origin, *, fresh: bool = False) -> Setup:
    """Create a pending authenticator (replacing any earlier pending one) and return its key.

    A confirmed authenticator, if any, keeps working until the new one is confirmed.
    """
    confirm_password(user, password, origin, fresh=fresh)
    secret = totp.new_secret()
    with transaction.atomic():
        # Lock the user row: concurrent starts (a double click) queue instead of both inserting
        # a pending device and one failing on one_pending_device.
        User.objects.select_for_update().get(pk=user.pk)
        TotpDevice.objects.filter(user=user, confirmed=False).delete()
        TotpDevice.objects.create(user=user, encrypted_secret=crypto.encrypt_secret(secret))
    return _setup_for(user, secret)


def pending_setup(user: User) -> Setup | None:
    """Return the pending authenticator's key again (the page was reloaded), or None."""
    device = TotpDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        return None
    return _setup_for(user, crypto.decrypt_secret(device.encrypted_secret))


def confirm_setup(user: User, code: str, origin: Origin, *, new_codes: bool = False) -> Confirmed:
    """Confirm the pending authenticator with a first code; it replaces any earlier one.

    First-time enabling makes the backup codes (returned once); `new_codes` makes a fresh set
    on replacement too (the lost-phone path). Other sessions of the user end.
    """
    device = TotpDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        raise NoPendingSetup()
    try:
        typed = totp.normalize_code(code)
    except MalformedCode:
        raise InvalidCode(_("Enter the 6-digit code your app shows."), status=400) from None
    secret = crypto.decrypt_secret(device.encrypted_secret)
    now_unix = clock.now()
    match = totp.match_code(secret, typed, now_unix)
    if match is None:
        skew = totp.find_clock_skew(secret, typed, now_unix)
        if skew is not None:
            minutes = max(1, round(abs(skew) / 60))
            if skew > 0:
                clock_off = ngettext("That code is from the future: your phone's clock looks about "
                                     "%(minutes)d minute fast.",
                                     "That code is from the future: your phone's clock looks about "
                                     "%(minutes)d minutes fast.", minutes)
            else:
                clock_off = ngettext("That code is from the past: your phone's clock looks about "
                                     "%(minutes)d minute slow.",
                                     "That code is from the past: your phone's clock looks about "
                                     "%(minutes)d minutes slow.", minutes)
            raise InvalidCode(
                (clock_off % {"minutes": minutes}) + " "
                + _("Let the phone set its time automatically, then enter the new code."),
                status=400, clock_skew_seconds=skew,
            )
        raise InvalidCode(_("That code is not right. Check the app shows the new entry and try again."),
                          status=400)
    now = clock.utcnow()
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        replaced = TotpDevice.objects.filter(user=user, confirmed=True).delete()[0] > 0
        won = TotpDevice.objects.filter(pk=device.pk, confirmed=False).update(
            confirmed=True, confirmed_at=now, last_step=match.step
        )
        if not won:  # a concurrent request confirmed it first
            transaction.set_rollback(True)
            raise NoPendingSetup()
        made = None
        if new_codes or not BackupCode.objects.filter(user=user, used_at__isnull=True).exists():
            made = backup_codes.replace_codes(user, now)
        throttling.reset_second_factor(user)
        user.security_stamp = User._meta.get_field("security_stamp").default()
        user.save(update_fields=["security_stamp"])
        kind = Type.AUTHENTICATOR_REPLACED if replaced else Type.TWO_FACTOR_ENABLED
        audit.record(kind, user=user, actor=user, origin=origin)
        if made:
            audit.record(Type.BACKUP_CODES_GENERATED, user=user, actor=user, origin=origin)
        notifications.notify(user, kind.value, ip=origin.ip)
    return Confirmed(replaced=replaced, backup_codes=made)


def remove_second_factor(user: User) -> None:
    """Delete the user's authenticators and codes, unlock, end sessions (caller holds a transaction)."""
    TotpDevice.objects.filter(user=user).delete()
    BackupCode.objects.filter(user=user).delete()
    user.backup_codes_salt = ""
    user.backup_codes_generated_at = None
    user.second_factor_failures = 0
    user.second_factor_blocked_until = None
    user.security_stamp = User._meta.get_field("security_stamp").default()
    user.save()


def disable(user: User, password: str | None, code: str, origin: Origin) -> None:
    """Switch 2FA off with the password and a current code (app or backup), unless required."""
    from . import verification

    if not is_enabled(user):
        raise TwoFactorDisabled()
    if is_required(user):
        raise TwoFactorRequired()
    confirm_password(user, password, origin)
    verification.check_code(user.pk, code, origin, method="auto", purpose="disable")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        remove_second_factor(user)
        audit.record(Type.TWO_FACTOR_DISABLED, user=user, actor=user, origin=origin)
        notifications.notify(user, "two_factor_disabled", actor=user.login, ip=origin.ip)
