"""The account admin's tools: the user list, switching a user's 2FA off, the account's policy."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from ninja import Query, Router

from ..http import origin
from ..services import accounts, recovery
from ..services.errors import (
    Conflict,
    InvalidInput,
    NotAccountAdmin,
    NotFound,
    Throttled,
    TwoFactorDisabled,
    WrongPassword,
)
from ..services.recovery_passes import ApprovalPending
from .errors import NotAuthenticated, SetupRequired
from .schemas import AdminDisableIn, DisabledOut, PolicyIn, PolicyOut, UsersOut, UsersQuery, spec
from .security import SignedIn

router = Router(tags=["account admin"], auth=SignedIn())


@router.get("/users", **spec(UsersOut, NotAuthenticated, NotAccountAdmin, SetupRequired, InvalidInput))
def users(request, params: Query[UsersQuery]):
    """List the users of the admin's own account, by login, a page at a time."""
    page, next_cursor = accounts.list_users(request.auth, query=params.q, after=params.cursor or None,
                                            limit=params.limit, enrolled=params.enrolled)
    return {
        "users": [
            {"id": s.user.pk, "login": s.user.login, "email": s.user.email,
             "is_admin": s.user.is_account_admin, "two_factor_enabled": s.two_factor_enabled,
             "backup_codes_remaining": s.backup_codes_remaining, "last_login": s.last_login}
            for s in page
        ],
        "next": next_cursor,
    }


@router.post("/users/{id}/two-factor/disable",
             **spec(DisabledOut, NotAuthenticated, NotAccountAdmin, WrongPassword, SetupRequired, NotFound,
                    TwoFactorDisabled, Conflict, Throttled, InvalidInput, ApprovalPending, unsafe=True))
def disable_two_factor(request, id: str, body: AdminDisableIn):
    """Switch 2FA off for a user of the admin's account, with a reason and the admin's password.

    The user's sessions end and the user is e-mailed. A user of another account, or an id that
    is not a number, is 404 `not_found`. Admins switch their own 2FA off on /me.
    """
    recovery.admin_disable_two_factor(request.auth, id, body.reason, body.password, origin(request))
    return {"enabled": False}


@router.put("/policy", exclude_unset=True,
            **spec(PolicyOut, NotAuthenticated, NotAccountAdmin, SetupRequired, InvalidInput, unsafe=True))
def set_policy(request, body: PolicyIn):
    """Set the account's policy: require 2FA now, from a date, and a second admin's approval.

    Only the fields sent change; the answer echoes them with `require_two_factor`. Users without
    2FA are held at `setup_required` once it is required (from the date on, for a deadline).
    """
    sent, admin, where = body.model_fields_set, request.auth, origin(request)
    if not sent:
        raise InvalidInput(_("Send at least one policy field."))
    out = {}
    if "require_two_factor_from" in sent:
        account = accounts.set_two_factor_deadline(admin, body.require_two_factor_from, where)
        out["require_two_factor_from"] = account.require_two_factor_from
    if "require_second_admin" in sent:
        if body.require_second_admin is None:
            raise InvalidInput(_("require_second_admin must be true or false."))
        account = accounts.set_require_second_admin(admin, body.require_second_admin, where)
        out["require_second_admin"] = account.require_second_admin
    if "remember_browser_days" in sent:
        if body.remember_browser_days is None:
            raise InvalidInput(_("remember_browser_days must be a whole number from 0 to 90."))
        account = accounts.set_remember_browser_days(admin, body.remember_browser_days, where)
        out["remember_browser_days"] = account.remember_browser_days
    if "allow_passkeys" in sent:
        if body.allow_passkeys is None:
            raise InvalidInput(_("allow_passkeys must be true or false."))
        account = accounts.set_allow_passkeys(admin, body.allow_passkeys, where)
        out["allow_passkeys"] = account.allow_passkeys
    if "require_two_factor" in sent:
        if body.require_two_factor is None:
            raise InvalidInput(_("require_two_factor must be true or false."))
        account = accounts.set_require_two_factor(admin, body.require_two_factor, where)
    else:
        account = admin.account.__class__.objects.get(pk=admin.account_id)
    return {"require_two_factor": account.require_two_factor, **out}
