"""The admin's override without switching 2FA off: a one-time sign-in pass, and second-admin approval.

A pass lets a locked-out user sign in once with the password and the pass, straight into
registering a new authenticator; the old one keeps working until the new one is confirmed.
It is shown once (to the admin who issued or approved it), stored only as a keyed hash, expires
after TWOSTEP_RECOVERY_PASS_HOURS, and is spent by one conditional UPDATE, so of any number of
concurrent uses one wins (Keycloak #26106). Wrong passes count toward the user's one
second-factor throttle. Issuing and approving need the admin's own two-factor authentication
and a second factor proved just now (recovery.confirm_admin). With the account's second-admin rule, an admin's pass or switch-off
waits as a RecoveryRequest until another admin of the account approves it with their password.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from ..core import clock
from ..models import RecoveryRequest, User
from . import audit, notifications, throttling
from .audit import Origin, Type
from .errors import (
    Conflict,
    NotAccountAdmin,
    NotFound,
    ServiceError,
    TwoFactorDisabled,
)
from .factors import enabled as is_enabled
from .factors.recovery_pass import ALPHABET, SYMBOLS, digest, normalize

Kind = RecoveryRequest.Kind


class ApprovalPending(ServiceError):
    """Not a failure: the action waits for a second admin (HTTP 202)."""

    code = "approval_pending"
    default_message = _("Another admin of this account must approve this before it takes effect. "
                        "It is waiting for them.")


@dataclass(frozen=True)
class Issued:
    request: RecoveryRequest
    code: str | None  # the pass, shown this once; None while approval is pending

    @property
    def pending(self) -> bool:
        return self.code is None and self.request.approved_at is None


def make_code(choice=secrets.choice) -> str:
    """Return a new pass, grouped for reading aloud: XXXX-XXXX-XXXX-XXXX."""
    body = "".join(choice(ALPHABET) for _ in range(SYMBOLS))
    return "-".join(body[i:i + 4] for i in range(0, SYMBOLS, 4))


def _hours() -> timedelta:
    return timedelta(hours=settings.TWOSTEP_RECOVERY_PASS_HOURS)


def _target(admin: User, user_id, origin: Origin, action: str) -> User:
    from .recovery import account_user

    return account_user(admin, user_id, origin, action)


def request_approval(admin: User, user: User, kind: str, reason: str, origin: Origin) -> RecoveryRequest:
    """Record an admin's action as waiting for a second admin (the checks were made already)."""
    now = clock.utcnow()
    with transaction.atomic():
        request = RecoveryRequest.objects.create(
            kind=kind, account_id=admin.account_id, user=user, requested_by=admin, reason=reason,
            created_at=now, expires_at=now + _hours(),
        )
        audit.record(Type.RECOVERY_REQUESTED, user=user, actor=admin, origin=origin, kind=kind,
                     reason=reason, request=request.pk)
    return request


def issue(admin: User, user_id, reason: str, password: str | None, origin: Origin, *,
          code: str | None = None, second_factor_fresh: bool = False) -> Issued:
    """Issue a one-time sign-in pass for a user of the admin's account (or ask for approval).

    Same account, a reason, the admin's own password and second factor (`code`, or one proved
    moments ago: recovery.confirm_admin), never for oneself.
    """
    from .recovery import _clean_reason, confirm_admin, require_own_two_factor

    user = _target(admin, user_id, origin, "issue_recovery_pass")
    require_own_two_factor(admin, user.pk, origin, "issue_recovery_pass")
    reason = _clean_reason(reason)
    if user.pk == admin.pk:
        raise Conflict(_("You cannot issue a sign-in pass for yourself."))
    confirm_admin(admin, password, code, origin, second_factor_fresh=second_factor_fresh)
    if not is_enabled(user):
        raise TwoFactorDisabled(_("This user has no two-factor authentication: the password alone signs them in."))
    if admin.account.require_second_admin:
        return Issued(request_approval(admin, user, Kind.SIGN_IN_PASS, reason, origin), None)
    now = clock.utcnow()
    with transaction.atomic():
        request = RecoveryRequest.objects.create(
            kind=Kind.SIGN_IN_PASS, account_id=admin.account_id, user=user, requested_by=admin,
            reason=reason, created_at=now, approved_by=admin, approved_at=now, expires_at=now,
        )
        code = _activate_pass(request, admin, origin)
    return Issued(request, code)


def _activate_pass(request: RecoveryRequest, admin: User, origin: Origin) -> str:
    """Give an approved pass request its code (inside the caller's transaction); return the code."""
    now = clock.utcnow()
    user = User.objects.select_for_update().select_related("account").get(pk=request.user_id)
    # One live pass per user: a new one cancels any earlier unused one.
    RecoveryRequest.objects.filter(user=user, kind=Kind.SIGN_IN_PASS, used_at__isnull=True,
                                   cancelled_at__isnull=True).exclude(pk=request.pk).update(cancelled_at=now)
    code = make_code()
    request.token_digest = digest(normalize(code))
    request.expires_at = now + _hours()
    request.save(update_fields=["token_digest", "expires_at"])
    # The admin vouched for the person: a lock from earlier wrong codes no longer stands in the way.
    throttling.reset_second_factor(user)
    audit.record(Type.RECOVERY_PASS_ISSUED, user=user, actor=admin, origin=origin, reason=request.reason,
                 request=request.pk, expires_at=request.expires_at.isoformat())
    requester = request.requested_by.login if request.requested_by else admin.login
    notifications.notify(user, "recovery_pass_issued", by="admin", actor=requester, reason=request.reason,
                         ip=origin.ip)
    return code


# Second admin ------------------------------------------------------------------------------

def pending_requests(admin: User) -> list[RecoveryRequest]:
    """Return the account's requests waiting for approval (not expired, not cancelled)."""
    if not admin.is_account_admin:
        raise NotAccountAdmin()
    return list(RecoveryRequest.objects.select_related("user", "requested_by").filter(
        account_id=admin.account_id, approved_at__isnull=True, cancelled_at__isnull=True,
        expires_at__gt=clock.utcnow(),
    ).order_by("created_at"))


@dataclass(frozen=True)
class Approved:
    request: RecoveryRequest
    code: str | None  # the pass, for a pass request: shown to the approver once


def approve(approver: User, request_id, password: str | None, origin: Origin, *,
            code: str | None = None, second_factor_fresh: bool = False) -> Approved:
    """Approve another admin's pending request with one's own password; it takes effect now.

    The approver needs their own 2FA and a second factor, as the requester did
    (recovery.confirm_admin).
    """
    from .recovery import confirm_admin, disable_now, require_own_two_factor

    if not approver.is_account_admin:
        raise NotAccountAdmin()
    try:
        request_id = int(request_id)
    except (TypeError, ValueError):
        raise NotFound(_("No such request.")) from None
    request = RecoveryRequest.objects.filter(pk=request_id, account_id=approver.account_id).first()
    if request is None:
        raise NotFound(_("No such request."))
    require_own_two_factor(approver, request.user_id, origin, "approve_recovery_request")
    if request.requested_by_id == approver.pk:
        raise Conflict(_("Another admin must approve your own request."))
    if request.user_id == approver.pk:
        raise Conflict(_("You cannot approve a request about yourself."))
    confirm_admin(approver, password, code, origin, second_factor_fresh=second_factor_fresh)
    now = clock.utcnow()
    with transaction.atomic():
        won = RecoveryRequest.objects.filter(
            pk=request.pk, approved_at__isnull=True, cancelled_at__isnull=True, expires_at__gt=now,
        ).update(approved_by=approver, approved_at=now)
        if not won:
            raise Conflict(_("This request was approved, cancelled or has expired already."))
        request.refresh_from_db()
        audit.record(Type.RECOVERY_APPROVED, user=request.user, actor=approver, origin=origin,
                     kind=request.kind, request=request.pk,
                     requested_by=request.requested_by.login if request.requested_by else None)
        if request.kind == Kind.SIGN_IN_PASS:
            return Approved(request, _activate_pass(request, approver, origin))
        user = User.objects.select_for_update().select_related("account").get(pk=request.user_id)
        if not is_enabled(user):
            transaction.set_rollback(True)
            raise TwoFactorDisabled(_("This user has no two-factor authentication to switch off."))
        disable_now(request.requested_by or approver, user, request.reason, origin, approved_by=approver)
    return Approved(request, None)


def cancel(admin: User, request_id, origin: Origin) -> None:
    """Cancel a pending request of the admin's account (any admin of the account may)."""
    if not admin.is_account_admin:
        raise NotAccountAdmin()
    now = clock.utcnow()
    with transaction.atomic():
        done = RecoveryRequest.objects.filter(pk=request_id, account_id=admin.account_id,
                                              approved_at__isnull=True, cancelled_at__isnull=True
                                              ).update(cancelled_at=now)
    if not done:
        raise NotFound(_("No such request."))
