"""Second-factor attempts: each proof spent under the one per-user throttle, and recorded.

Every kind of proof — app code, backup code, key, admin's pass — goes through `spend`, so one
failure counter serves them all (Gitea #6276), a throttled attempt is never checked
(privacyidea keycloak-provider #71), and the counter survives a restarted flow (Keycloak
#26177). `services/signin.py` decides when to call it.
"""

from __future__ import annotations

from dataclasses import replace

from django.db import connection, transaction

from ..core import clock
from ..models import User
from ..prepared import change, column
from . import audit, notifications, throttling
from .audit import Origin, Type
from .errors import InvalidCode, NoPendingSignIn, ServiceError
from .factors import MalformedProof, Verified, enabled
from .factors import backup_codes as backup_codes_factor
from .factors import totp as totp_factor

FAILURE_NOTICE_INTERVAL_SECONDS = 3600


def _last_login_statement(quote) -> str:
    return (f"UPDATE {quote(User._meta.db_table)} SET {column(User, quote, 'last_login')} = %s "  # noqa: S608 — quoted names, values bound
            f"WHERE {column(User, quote, 'id')} = %s")


def guarded_attempt(user_id: int, origin: Origin, step: str, attempt, *, stamp: str | None = None) -> User:
    """Run one second-factor attempt under the per-user throttle; return the user or raise.

    The user's row is locked for the whole attempt, so concurrent attempts queue: the throttle
    they read is current, and one failure counter serves every kind of proof. A throttled
    attempt is refused without calling `attempt` — a throttled guess never learns whether it
    was right (privacyidea keycloak-provider #71). `attempt(user, now)` spends the proof and
    returns None, or the error to raise; failures are committed before raising. With `stamp`
    (a held sign-in's), a user whose security stamp changed since is not pending any more.
    """
    error: ServiceError | None = None
    with transaction.atomic():
        user = User.objects.locked_with_account(user_id)
        if user is None or not user.is_active or (stamp is not None and user.security_stamp != stamp):
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


def spend(user_id: int, piece, proof, origin: Origin, *, purpose: str, stamp: str | None = None,
          then=None) -> Verified:
    """Spend one proof of `piece`'s kind under the throttle; raise InvalidCode or Throttled.

    The Verified carries the user's row as the attempt left it; `stamp` as in guarded_attempt.
    `then(verified)`, if given, runs in the spending's transaction once the proof is accepted:
    what it writes exists if and only if the proof is spent.
    """
    result: Verified | None = None
    method = piece.METHOD

    # Two-factor authentication must be on (a user who switched it off is not pending any more).
    # An app code is looked for among the user's confirmed apps, so one that is found proves it
    # on: for app codes the question is asked only when no app took the code.
    later = method == totp_factor.METHOD

    def off(user: User) -> bool:
        return method != "recovery_pass" and not enabled(user)

    def attempt(user: User, now) -> ServiceError | None:
        nonlocal result
        if not later and off(user):
            return NoPendingSignIn()
        try:
            result = piece.verify(user, proof, now, origin)
        except MalformedProof as typo:
            if later and off(user):
                return NoPendingSignIn()
            return InvalidCode(typo.message)  # never a valid proof: not counted
        except totp_factor.CodeAlreadyUsed as replay:
            count_failure(user, now, origin, method, purpose, notify=not replay.quiet, replay=True)
            return replay
        except backup_codes_factor.CodeAlreadyUsed as reused:  # told apart, counted all the same
            count_failure(user, now, origin, method, purpose, reused=True)
            return reused
        except InvalidCode as refused:  # the slice knows what went wrong (e.g. a cloned key)
            count_failure(user, now, origin, method, purpose)
            return refused
        if result is None:
            if later and off(user):
                return NoPendingSignIn()
            return count_failure(user, now, origin, method, purpose)
        throttling.reset_second_factor(user)
        if method == backup_codes_factor.METHOD:  # the count this use left, read under the lock
            result = replace(result, backup_codes_remaining=backup_codes_factor.remaining(user), user=user)
            backup_codes_factor.announce_use(user, origin, result.backup_codes_remaining, purpose)
        else:  # unchanged by this proof: read only by whoever shows it
            result = replace(result, user=user)
        if purpose == "sign_in":
            record_sign_in(user, origin, method=method)
        if then is not None:
            then(result)
        return None

    guarded_attempt(user_id, origin, method, attempt, stamp=stamp)
    return result


def count_failure(user: User, now, origin: Origin, method: str, purpose: str, *, notify: bool = True,
                  **detail) -> ServiceError:
    """Count a wrong proof on the user's locked row; lock at the limit; tell the user once an hour."""
    throttling.record_second_factor_failure(user, now)
    audit.record(Type.SECOND_FACTOR_FAILED, user=user, origin=origin, method=method,
                 purpose=purpose, failures=user.second_factor_failures, **detail)
    if throttling.second_factor_locked(user):
        audit.record(Type.SECOND_FACTOR_LOCKED, user=user, origin=origin)
        notifications.notify(user, "second_factor_locked", ip=origin.ip)
    elif notify and purpose == "sign_in" and (
        user.failure_notice_sent_at is None
        or (now - user.failure_notice_sent_at).total_seconds() > FAILURE_NOTICE_INTERVAL_SECONDS
    ):
        user.failure_notice_sent_at = now
        user.save(update_fields=["failure_notice_sent_at"])
        notifications.notify(user, "second_factor_failed", ip=origin.ip)
    return InvalidCode()


def record_sign_in(user: User, origin: Origin, method: str) -> None:
    """Note a completed sign-in: last_login and the audit event with the factor used."""
    now = clock.utcnow()
    change(_last_login_statement, [connection.ops.adapt_datetimefield_value(now), user.pk])
    user.last_login = now
    audit.record(Type.SIGN_IN, user=user, actor=user, origin=origin, method=method)
