"""The account admin's tools: the user list, switching a user's 2FA off, the account's policy."""

from __future__ import annotations

from ninja import Query, Router

from .. import signin_state
from ..http import origin
from ..services import accounts, recovery, signin
from ..services.errors import (
    AdminNeedsTwoFactor,
    Conflict,
    InvalidConfirmationCode,
    InvalidInput,
    NotAccountAdmin,
    NotFound,
    SecondFactorRequired,
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
             "backup_codes_remaining": s.backup_codes_remaining, "last_login": s.last_login,
             "authenticators": [{"kind": kind, "name": name} for kind, name in s.authenticators]}
            for s in page
        ],
        "next": next_cursor,
    }


@router.post("/users/{id}/two-factor/disable",
             **spec(DisabledOut, NotAuthenticated, NotAccountAdmin, AdminNeedsTwoFactor, SecondFactorRequired,
                    WrongPassword, InvalidConfirmationCode, SetupRequired, NotFound, TwoFactorDisabled, Conflict,
                    Throttled, InvalidInput, ApprovalPending, unsafe=True))
def disable_two_factor(request, id: str, body: AdminDisableIn):
    """Switch 2FA off for a user of the admin's account, with a reason and the admin's password.

    The admin needs two-factor authentication of their own (else 403 `admin_two_factor_required`)
    and sends a current app or backup `code`, unless this session signed in with a second
    factor within the last few minutes (else 403 `second_factor_required`). The user's sessions
    end and the user is e-mailed. A user of another account, or an id that is not a number, is
    404 `not_found`. Admins switch their own 2FA off on /me.
    """
    recovery.admin_disable_two_factor(request.auth, id, body.reason, body.password, origin(request),
                                      code=body.code,
                                      second_factor_fresh=signin.second_factor_is_fresh(signin_state.of(request)))
    signin_state.stepped_up(request, body.code)
    return {"enabled": False}


@router.put("/policy", exclude_unset=True,
            **spec(PolicyOut, NotAuthenticated, NotAccountAdmin, SetupRequired, InvalidInput, unsafe=True))
def set_policy(request, body: PolicyIn):
    """Set the account's policy: require 2FA now, from a date, and a second admin's approval.

    Only the fields sent change, all of them or none: one wrong field is 422 `invalid_input`
    naming it in `fields`, and nothing is saved. The answer echoes the fields sent with
    `require_two_factor`. Users without 2FA are held at `setup_required` once it is required
    (from the date on, for a deadline).
    """
    sent = sorted(body.model_fields_set)
    account = accounts.change_policy(request.auth, {field: getattr(body, field) for field in sent},
                                     origin(request))
    return {"require_two_factor": account.require_two_factor,
            **{field: getattr(account, field) for field in sent}}
