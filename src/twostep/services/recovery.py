"""Letting a locked-out person back in: the account admin's and the operator's switch-off.

Every admin action on another user's factors (switching them off here; a one-time pass or an
approval in recovery_passes) needs the admin's own two-factor authentication and a second
factor proved just now, besides the password: else a stolen admin password alone — from an
admin with no second factor to steal — would open everyone else's. The operator's break-glass
on the command line is not an account admin's action and needs neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from ..models import SecurityEvent, User
from . import audit, notifications
from .audit import Origin, Type
from .authenticators import remove_second_factor
from .errors import (
    AdminNeedsTwoFactor,
    Conflict,
    InvalidCode,
    InvalidConfirmationCode,
    InvalidInput,
    NotAccountAdmin,
    NotFound,
    SecondFactorRequired,
    TwoFactorDisabled,
)
from .factors import enabled as is_enabled
from .reauth import confirm_password

MAX_REASON = 500


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("Say why two-factor authentication is being switched off."))
    if len(reason) > MAX_REASON:
        raise InvalidInput(_("Keep the reason under 500 characters."))
    return reason


def account_user(admin: User, user_id, origin: Origin | None = None, action: str = "") -> User:
    """Return a user of the admin's own account; any other is "not found" (ASVS 8.2.2).

    The refusal is audited in the admin's account (ASVS 16.3.1), the same event whether the id
    belongs to another account or to no one, so the log reveals no more than the answer did.
    """
    if not admin.is_account_admin:
        raise NotAccountAdmin()
    try:
        user = User.objects.filter(pk=int(user_id), account_id=admin.account_id).first()
    except (TypeError, ValueError, OverflowError):
        user = None
    if user is None:
        audit.record(Type.ADMIN_ACCESS_DENIED, actor=admin, account=admin.account, origin=origin,
                     target=str(user_id).replace("\x00", "")[:40], action=action)
        raise NotFound()
    return user


def require_own_two_factor(admin: User, target_id, origin: Origin | None, action: str) -> None:
    """Refuse, and audit, an admin without two-factor authentication acting on another's factors."""
    if not is_enabled(admin):
        audit.record(Type.ADMIN_ACCESS_DENIED, actor=admin, account=admin.account, origin=origin,
                     target=str(target_id).replace("\x00", "")[:40], action=action, reason=AdminNeedsTwoFactor.code)
        raise AdminNeedsTwoFactor()


def confirm_admin(admin: User, password: str | None, code: str | None, origin: Origin, *,
                  second_factor_fresh: bool) -> None:
    """Check the admin's password and own second factor before an action on another's factors.

    `code` is a current app code or a backup code of the admin's, checked and spent under the
    admin's own second-factor throttle (a wrong one counts there and is InvalidConfirmationCode).
    It may be left out only when the transport vouches that this session proved a second factor
    within the last few minutes (`second_factor_fresh`, from signin.second_factor_is_fresh).
    A missing code is refused before the password is tried, so nothing is spent on it.
    """
    from . import signin

    if not isinstance(code, str):
        code = ""
    code = code.strip()
    if not code and not second_factor_fresh:
        raise SecondFactorRequired()
    confirm_password(admin, password, origin)
    if code:
        try:
            signin.check_code(admin.pk, code, origin, purpose="step_up")
        except InvalidCode as wrong:  # bad input for this action, not a failed sign-in
            raise InvalidConfirmationCode(wrong.message, **wrong.extra) from None


def admin_disable_two_factor(admin: User, user_id, reason: str, password: str | None,
                             origin: Origin, *, code: str | None = None,
                             second_factor_fresh: bool = False) -> User:
    """Switch 2FA off for a user of the admin's account, with a reason and the admin's password.

    The admin needs 2FA of their own and a second factor: `code`, or one proved moments ago
    in this session (`second_factor_fresh`); see confirm_admin. The user's sessions end, the
    event is audited and the user is told by e-mail.
    """
    user = account_user(admin, user_id, origin, "disable_two_factor")
    require_own_two_factor(admin, user.pk, origin, "disable_two_factor")
    reason = _clean_reason(reason)
    if user.pk == admin.pk:
        # Otherwise an admin session plus the password would skip the admin's own second factor.
        raise Conflict(_("Switch off your own two-factor authentication on your security page."))
    confirm_admin(admin, password, code, origin, second_factor_fresh=second_factor_fresh)
    if admin.account.require_second_admin:
        # The account wants two admins: record the request and answer 202 approval_pending.
        from .recovery_passes import ApprovalPending, request_approval

        if not is_enabled(user):
            raise TwoFactorDisabled(_("This user has no two-factor authentication to switch off."))
        pending = request_approval(admin, user, "disable_two_factor", reason, origin)
        raise ApprovalPending(request_id=pending.pk)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if not is_enabled(user):
            raise TwoFactorDisabled(_("This user has no two-factor authentication to switch off."))
        disable_now(admin, user, reason, origin)
    return user


def disable_now(admin: User, user: User, reason: str, origin: Origin, *, approved_by: User | None = None) -> None:
    """Switch the user's 2FA off for an admin (caller holds the user's row locked in a transaction)."""
    remove_second_factor(user)
    extra = {"approved_by": approved_by.login} if approved_by is not None else {}
    audit.record(Type.ADMIN_DISABLED_TWO_FACTOR, user=user, actor=admin, origin=origin, reason=reason, **extra)
    notifications.notify(user, "two_factor_disabled", by="admin", actor=admin.login, reason=reason,
                         ip=origin.ip)


def operator_disable_two_factor(login: str, reason: str) -> User:
    """The operator's break-glass from the command line, for any user."""
    reason = _clean_reason(reason)
    origin = Origin.command_line()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(login__caseless=login.strip()).first()
        if user is None:
            raise NotFound(_("No user with the login %(login)s.") % {"login": login})
        if not is_enabled(user):
            raise TwoFactorDisabled(_("This user has no two-factor authentication to switch off."))
        remove_second_factor(user)
        audit.record(Type.OPERATOR_DISABLED_TWO_FACTOR, user=user, origin=origin, reason=reason)
        notifications.notify(user, "two_factor_disabled", by="operator", actor=_("the server operator"),
                             reason=reason)
    return user


# Events after which a switch-off no longer describes the user's 2FA: set up or changed since.
_LATER_CHANGES = (Type.TWO_FACTOR_ENABLED, Type.TWO_FACTOR_DISABLED, Type.AUTHENTICATOR_ADDED,
                  Type.AUTHENTICATOR_REMOVED, Type.AUTHENTICATOR_REPLACED)


@dataclass(frozen=True)
class SwitchedOff:
    """Who switched a user's 2FA off for them, and when: an admin (`by` their login) or the operator."""

    at: datetime
    by: str  # the admin's login; "" when it was the server operator
    reason: str


def switched_off_for_user(user: User) -> SwitchedOff | None:
    """Return the admin's or operator's switch-off that left `user` without 2FA, or None.

    None once the user has 2FA again, or changed their factors since (the audit log's order).
    """
    if is_enabled(user):
        return None
    last = (SecurityEvent.objects.select_related("actor")
            .filter(user=user, type__in=(Type.ADMIN_DISABLED_TWO_FACTOR, Type.OPERATOR_DISABLED_TWO_FACTOR,
                                         *_LATER_CHANGES))
            .order_by("-at", "-pk").first())
    if last is None or last.type in _LATER_CHANGES:
        return None
    by = "" if last.type == Type.OPERATOR_DISABLED_TWO_FACTOR else (
        last.actor.login if last.actor is not None else last.actor_label)
    return SwitchedOff(at=last.at, by=by, reason=str(last.detail.get("reason", "")))
