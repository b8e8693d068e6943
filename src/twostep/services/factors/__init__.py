"""Second factors: one slice per kind, each of the same shape, and the registry over them.

A slice is a module here that owns one kind of proof:

    METHOD   the name the second step uses ("webauthn", "totp", "backup_code", "recovery_pass")
    AMR      what a sign-in with it proves, as RFC 8176 values
    offered(user, facts) -> bool
             whether the second step offers it to this user (`facts` is `Facts`, one query)
    verify(user, proof, now, origin) -> Verified | None
             spend the proof inside the caller's transaction, with the user's row locked by
             `attempts.guarded_attempt`; None for a wrong proof (counted by the caller); raise
             `MalformedProof` for a typo that can never be right (not counted)

Kinds a user registers (apps, security keys) also have enrolment functions and a `describe`;
what every kind shares after enrolment — names, listing, removing, the first-time backup
codes, the audit and the mail — is `services/authenticators.py`. Adding a kind is one new
slice module, its entry in SLICES, its pages and its schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from ...models import Authenticator, BackupCode, RecoveryRequest
from ...prepared import PreparedQuery, column, written
from ..errors import InvalidInput, ServiceError


class MalformedProof(ServiceError):
    """Shaped wrong for its kind (a typo), so never right: refused without counting a failure."""

    code = "invalid_code"


@dataclass(frozen=True)
class Verified:
    method: str
    amr: tuple[str, ...]
    authenticator_id: int | None = None
    # Signed in without any authenticator (backup code, admin's pass): offer a new one.
    recovery: bool = False
    backup_codes_remaining: int | None = None  # after a backup code, what it left; else None
    # The user's row as the attempt left it (read locked, account included): filled in by the
    # sign-in flow, which signs this one in rather than reading the row again.
    user: object | None = None


@dataclass(frozen=True)
class Facts:
    """What the registry read about a user's factors in one query: the second step's menu."""

    kinds: frozenset[str]  # kinds of confirmed authenticators
    backup_codes: int  # unused codes
    recovery_pass: bool  # an approved, unused, unexpired admin's pass


def _slices():
    from . import backup_codes, recovery_pass, totp, webauthn

    # The order is the order of preference at the second step: a key first (phishing-resistant).
    return {s.METHOD: s for s in (webauthn, totp, backup_codes, recovery_pass)}


METHODS = ("webauthn", "totp", "backup_code", "recovery_pass")


def slice_for(method: str):
    """Return the slice for a method name; InvalidInput for an unknown one."""
    found = _slices().get(method)
    if found is None:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}.")
    return found


# Read on nearly every request of a signed-in user or a sign-in: compiled once (prepared.py).
_ONE_CONFIRMED = PreparedQuery(
    lambda user_id: Authenticator.objects.filter(user_id=user_id, confirmed=True).values_list("pk")[:1])
_CONFIRMED_KINDS = PreparedQuery(
    lambda user_id: Authenticator.objects.filter(user_id=user_id, confirmed=True).values_list("kind").distinct())


def enabled(user) -> bool:
    """Tell whether two-factor authentication is on: one confirmed authenticator of any kind."""
    return bool(_ONE_CONFIRMED.values(user.pk))


def enabled_q(prefix: str = "") -> Q:
    """A filter on users (or on `prefix`+user) with two-factor authentication on, for lists."""
    from django.db.models import Exists, OuterRef

    return Q(Exists(Authenticator.objects.filter(user=OuterRef(f"{prefix}pk"), confirmed=True)))


def confirmed_kinds(user) -> frozenset[str]:
    """Return the kinds of the user's confirmed authenticators (none: two-factor authentication is off)."""
    return frozenset(kind for (kind,) in _CONFIRMED_KINDS.values(user.pk))


def facts(user, now, kinds: frozenset[str] | None = None) -> Facts:
    """Read what the second step may offer this user (two queries; one when `kinds` is known).

    The unused backup codes and "has an approved, unused, unexpired admin's pass" are one plain
    statement of two subqueries: the second step's menu is read at the password step and again
    on the code page, and building the two as ORM queries cost more than running them.
    """
    codes, has_pass = _codes_and_pass(user.pk, now)
    if kinds is None:
        kinds = confirmed_kinds(user)
    return Facts(kinds=kinds, backup_codes=codes, recovery_pass=has_pass)


def _codes_and_pass(user_id: int, now) -> tuple[int, bool]:
    """Count the user's unused backup codes; tell whether a sign-in pass is ready (one statement).

    The same as BackupCode.objects.filter(user=…, used_at__isnull=True).count() and
    RecoveryRequest.objects.filter(user=…, kind=SIGN_IN_PASS, approved_at__isnull=False,
    used_at__isnull=True, cancelled_at__isnull=True, expires_at__gt=now).exists().
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(written(connection, _codes_and_pass_statement),
                       [user_id, user_id, RecoveryRequest.Kind.SIGN_IN_PASS, connection.ops.adapt_datetimefield_value(now)])
        count, ready = cursor.fetchone()
    return int(count), bool(ready)


def _codes_and_pass_statement(quote) -> str:
    def col(model, name):
        return column(model, quote, name)

    codes, passes = quote(BackupCode._meta.db_table), quote(RecoveryRequest._meta.db_table)
    return (
        f"SELECT (SELECT COUNT(*) FROM {codes} WHERE {col(BackupCode, 'user')} = %s "  # noqa: S608 — quoted names, values bound
        f"AND {col(BackupCode, 'used_at')} IS NULL), "
        f"EXISTS (SELECT 1 FROM {passes} WHERE {col(RecoveryRequest, 'user')} = %s "
        f"AND {col(RecoveryRequest, 'kind')} = %s AND {col(RecoveryRequest, 'approved_at')} IS NOT NULL "
        f"AND {col(RecoveryRequest, 'used_at')} IS NULL AND {col(RecoveryRequest, 'cancelled_at')} IS NULL "
        f"AND {col(RecoveryRequest, 'expires_at')} > %s)"
    )


def methods(user, now, kinds: frozenset[str] | None = None) -> list[str]:
    """Return the second-step methods this user actually has, in order of preference.

    `kinds`: the user's confirmed_kinds() when the caller has just read them.
    """
    known = facts(user, now, kinds)
    return [method for method, piece in _slices().items() if piece.offered(user, known)]
