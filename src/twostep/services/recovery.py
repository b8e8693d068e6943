"""Letting a locked-out person back in: the account admin's and the operator's switch-off."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from ..models import User
from . import audit, notifications
from .audit import Origin, Type
from .authenticators import remove_second_factor
from .errors import Conflict, InvalidInput, NotAccountAdmin, NotFound, TwoFactorDisabled
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
                     target=str(user_id)[:40], action=action)
        raise NotFound()
    return user


def admin_disable_two_factor(admin: User, user_id, reason: str, password: str | None,
                             origin: Origin) -> User:
    """Switch 2FA off for a user of the admin's account, with a reason and the admin's password.

    The user's sessions end, the event is audited and the user is told by e-mail.
    """
    user = account_user(admin, user_id, origin, "disable_two_factor")
    reason = _clean_reason(reason)
    if user.pk == admin.pk:
        # Otherwise an admin session plus the password would skip the admin's own second factor.
        raise Conflict(_("Switch off your own two-factor authentication on your security page."))
    confirm_password(admin, password, origin)
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
        user = User.objects.select_for_update().filter(login__iexact=login.strip()).first()
        if user is None:
            raise NotFound(_("No user with the login %(login)s.") % {"login": login})
        if not is_enabled(user):
            raise TwoFactorDisabled(_("This user has no two-factor authentication to switch off."))
        remove_second_factor(user)
        audit.record(Type.OPERATOR_DISABLED_TWO_FACTOR, user=user, origin=origin, reason=reason)
        notifications.notify(user, "two_factor_disabled", by="operator", actor=_("the server operator"),
                             reason=reason)
    return user
