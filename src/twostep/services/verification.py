"""Sign-in: the password step, then the second step with an app code or a backup code."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth import authenticate
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from .. import crypto
from ..core import backup_codes as codes_core
from ..core import clock, totp
from ..core.errors import MalformedCode
from ..models import TotpDevice, User
from . import accounts, audit, backup_codes, notifications, throttling, trusted_browsers
from .audit import Origin, Type
from .errors import InvalidCode, InvalidCredentials, NoPendingSignIn, ServiceError

log = logging.getLogger("twostep.verification")

AUTHENTICATED = "authenticated"
SECOND_FACTOR = "second_factor"
SETUP_REQUIRED = "setup_required"
METHODS = ("totp", "backup_code")
FAILURE_NOTICE_INTERVAL_SECONDS = 3600


@dataclass(frozen=True)
class PasswordStep:
    user: User
    stage: str  # AUTHENTICATED, SECOND_FACTOR or SETUP_REQUIRED


@dataclass(frozen=True)
class CodeAccepted:
    method: str
    backup_codes_remaining: int


def _find_user(login: str) -> User | None:
    return User.objects.select_related("account").filter(login__iexact=login.strip()).first()


def check_password(login: str, password: str, origin: Origin,
                   remembered_token: str | None = None) -> PasswordStep:
    """Check login and password; say what the sign-in needs next.

    A throttled attempt is refused before any password hash is computed. Failures count per
    (login, address) and per address, so a stranger elsewhere never locks the real user out.
    """
    now = clock.utcnow()
    keys = throttling.password_keys(login, origin.ip)
    try:
        attempt = throttling.reserve_password_attempt(keys, now)
    except ServiceError:
        audit.record(Type.THROTTLED, user=_find_user(login), origin=origin, step="password")
        raise
    user = authenticate(None, login=login.strip(), password=password)
    if user is None:
        throttling.record_password_failure(attempt)
        audit.record(Type.SIGN_IN_FAILED, user=_find_user(login), origin=origin)
        raise InvalidCredentials()
    throttling.record_password_success(attempt)
    from .enrollment import is_enabled

    if is_enabled(user):
        stage = SECOND_FACTOR
        # A remembered browser skips only the second step, never the password (NIST §5.1);
        # a locked second factor is not skipped either.
        if (remembered_token and not throttling.second_factor_locked(user)
                and trusted_browsers.recognise(user, remembered_token)):
            stage = AUTHENTICATED
            record_sign_in(user, origin, method="remembered_browser")
    elif accounts.two_factor_required(user.account):
        stage = SETUP_REQUIRED
    else:
        stage = AUTHENTICATED
        record_sign_in(user, origin, method="password")
    return PasswordStep(user=user, stage=stage)


def record_sign_in(user: User, origin: Origin, method: str) -> None:
    """Note a completed sign-in: last_login and the audit event with the factor used."""
    now = clock.utcnow()
    User.objects.filter(pk=user.pk).update(last_login=now)
    user.last_login = now
    audit.record(Type.SIGN_IN, user=user, actor=user, origin=origin, method=method)


def record_sign_out(user: User, origin: Origin) -> None:
    audit.record(Type.SIGN_OUT, user=user, actor=user, origin=origin)


def _spend_totp(user: User, code: str) -> bool:
    device = TotpDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return False
    typed = totp.normalize_code(code)
    match = totp.match_code(crypto.decrypt_secret(device.encrypted_secret), typed, clock.now())
    if match is None:
        return False
    # The step must be newer than the last one accepted: a code is good once (RFC 6238 §5.2).
    # The condition sits in the UPDATE itself, so concurrent requests cannot both pass it.
    won = TotpDevice.objects.filter(pk=device.pk).exclude(last_step__gte=match.step).update(
        last_step=match.step
    )
    return won == 1


def guarded_attempt(user_id: int, origin: Origin, step: str, attempt, *, needs_authenticator: bool = True) -> User:
    """Run one second-factor attempt under the per-user throttle; return the user or raise.

    The user's row is locked for the whole attempt, so concurrent attempts queue: the throttle
    they read is current, and one failure counter serves every kind of code. A throttled
    attempt is refused without calling `attempt` — a throttled guess never learns whether it
    was right. `attempt(user, now)` spends the code and returns None, or the error to raise
    (after counting a failure with `count_failure`); failures are committed before raising.
    """
    error: ServiceError | None = None
    with transaction.atomic():
        user = User.objects.select_for_update().select_related("account").filter(pk=user_id).first()
        if user is None or not user.is_active or (
            needs_authenticator and not TotpDevice.objects.filter(user=user, confirmed=True).exists()
        ):
            raise NoPendingSignIn()
        now = clock.utcnow()
        try:
            throttling.check_second_factor(user, now)
        except ServiceError as throttled:
            audit.record(Type.THROTTLED, user=user, origin=origin, step=step)
            error = throttled
        else:
            error = attempt(user, now)
    if error is not None:
        raise error
    return user


def check_code(user_id: int, code: str, origin: Origin, *, method: str = "auto",
               purpose: str = "sign_in") -> CodeAccepted:
    """Check a second-factor code (app or backup) and spend it; raise InvalidCode or Throttled."""
    if not isinstance(code, str):
        raise InvalidCode()
    if method == "auto" or (method == "totp" and codes_core.looks_like_backup_code(code)):
        method = "backup_code" if codes_core.looks_like_backup_code(code) else "totp"
    remaining = 0

    def attempt(user: User, now) -> ServiceError | None:
        nonlocal remaining
        try:
            ok = _spend_totp(user, code) if method == "totp" else backup_codes.spend(user, code, now)
        except MalformedCode:
            # A typo (wrong shape or check symbol) is never a valid code: not counted.
            return InvalidCode(_("An app code is 6 digits.") if method == "totp"
                               else _("That is not a backup code: check it for typos."))
        if not ok:
            return count_failure(user, now, origin, method, purpose)
        throttling.reset_second_factor(user)
        remaining = backup_codes.remaining(user)
        if method == "backup_code":
            audit.record(Type.BACKUP_CODE_USED, user=user, actor=user, origin=origin,
                         remaining=remaining, purpose=purpose)
            notifications.notify(user, "backup_code_used", remaining=remaining, purpose=purpose,
                                 ip=origin.ip)
        if purpose == "sign_in":
            record_sign_in(user, origin, method=method)
        return None

    guarded_attempt(user_id, origin, "second_factor", attempt)
    return CodeAccepted(method=method, backup_codes_remaining=remaining)


def count_failure(user: User, now, origin: Origin, method: str, purpose: str) -> ServiceError:
    throttling.record_second_factor_failure(user, now)
    audit.record(Type.SECOND_FACTOR_FAILED, user=user, origin=origin, method=method,
                 purpose=purpose, failures=user.second_factor_failures)
    if throttling.second_factor_locked(user):
        audit.record(Type.SECOND_FACTOR_LOCKED, user=user, origin=origin)
        notifications.notify(user, "second_factor_locked", ip=origin.ip)
    elif purpose == "sign_in" and (
        user.failure_notice_sent_at is None
        or (now - user.failure_notice_sent_at).total_seconds() > FAILURE_NOTICE_INTERVAL_SECONDS
    ):
        user.failure_notice_sent_at = now
        user.save(update_fields=["failure_notice_sent_at"])
        notifications.notify(user, "second_factor_failed", ip=origin.ip)
    return InvalidCode()
