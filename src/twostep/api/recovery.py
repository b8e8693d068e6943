"""Passwords and admin recovery over the API: reset by e-mail, change, one-time passes, approvals.

Mounted at the API's root, so its paths sit beside /auth, /me and /account.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext_lazy as _
from ninja import Field, Router, Schema

from .. import signin_state
from ..http import origin, password_reset_url
from ..services import passwords, recovery_passes, signin
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
from .errors import NotAuthenticated, SetupRequired
from .schemas import STEP_UP_CODE, Code, Login, Password, Reason, spec, text
from .security import SignedIn

router = Router(tags=["passwords and recovery"])

RESET_SENT = _("If that login or e-mail address is known here, a message with a link to reset the "
               "password is on its way. The link works once.")


class ResetIn(Schema):
    login: Login = Field(description="A login or an e-mail address.")


class ResetOut(Schema):
    message: str


class ResetConfirmIn(Schema):
    uid: text(64, 1)
    token: text(128, 1)
    password: Password = Field(description="The new password.")


class PasswordChangedOut(Schema):
    password_changed: bool
    stage: str = Field(description="After a reset: `anonymous` — a reset never signs anyone in.")


class ChangePasswordIn(Schema):
    current_password: Password
    new_password: Password


class PassIn(Schema):
    reason: Reason = Field(description="Why (1 to 500 characters); kept in the audit log and e-mailed.")
    password: Password = Field(description="The admin's own password.")
    code: Code | None = Field(None, description=STEP_UP_CODE)


class PassOut(Schema):
    pending: bool = Field(description="True when the account requires a second admin's approval first.")
    request_id: int
    recovery_pass: str | None = Field(description="The pass, shown this once; null while pending.")
    expires_at: datetime | None


class ApproveIn(Schema):
    password: Password = Field(description="The approving admin's own password.")
    code: Code | None = Field(None, description=STEP_UP_CODE)


class RequestOut(Schema):
    id: int
    kind: str
    user_id: int
    user_login: str
    requested_by: str | None
    reason: str
    created_at: datetime
    expires_at: datetime


class RequestsOut(Schema):
    requests: list[RequestOut]


class ApprovedOut(Schema):
    kind: str
    recovery_pass: str | None = Field(description="For a pass request: the pass, shown this once to the approver.")
    expires_at: datetime | None


def _fresh(request) -> bool:
    """Tell whether this session proved a second factor moments ago (then `code` may be left out)."""
    return signin.second_factor_is_fresh(signin_state.of(request))


@router.post("/auth/password-reset", **spec(ResetOut, Throttled, InvalidInput, unsafe=True))
def password_reset(request, body: ResetIn):
    """Mail a reset link to the user with this login or e-mail address.

    The answer is the same whether or not the login exists (ASVS 6.3.8).
    """
    passwords.request_reset(body.login, origin(request), password_reset_url)
    return {"message": str(RESET_SENT)}


@router.post("/auth/password-reset/confirm",
             **spec(PasswordChangedOut, passwords.InvalidResetLink, InvalidInput, unsafe=True))
def password_reset_confirm(request, body: ResetConfirmIn):
    """Set a new password through the link's uid and token. Never signs in; 2FA is unchanged."""
    passwords.confirm_reset(body.uid, body.token, body.password, origin(request))
    return {"password_changed": True, "stage": "anonymous"}


@router.post("/me/password", auth=SignedIn(),
             **spec(PasswordChangedOut, NotAuthenticated, WrongPassword, SetupRequired, Throttled, InvalidInput,
                    unsafe=True))
def change_password(request, body: ChangePasswordIn):
    """Change the password with the current one; other sessions end, this one stays."""
    user = passwords.change_password(request.auth, body.current_password, body.new_password, origin(request))
    signin_state.keep_session(request, user)
    return {"password_changed": True, "stage": "authenticated"}


@router.post("/account/users/{id}/recovery-pass", auth=SignedIn(),
             **spec(PassOut, NotAuthenticated, NotAccountAdmin, AdminNeedsTwoFactor, SecondFactorRequired,
                    WrongPassword, InvalidConfirmationCode, SetupRequired, NotFound, TwoFactorDisabled, Conflict,
                    Throttled, InvalidInput, unsafe=True))
def issue_pass(request, id: str, body: PassIn):
    """Issue a one-time sign-in pass for a user of the admin's account (shown this once).

    Like switching 2FA off, it needs the admin's own 2FA and a second factor: `code`, or a
    sign-in with a second factor within the last few minutes. With the account's second-admin
    rule the answer is `pending` and another admin approves it.
    """
    issued = recovery_passes.issue(request.auth, id, body.reason, body.password, origin(request),
                                   code=body.code, second_factor_fresh=_fresh(request))
    signin_state.stepped_up(request, body.code)
    return {"pending": issued.pending, "request_id": issued.request.pk, "recovery_pass": issued.code,
            "expires_at": issued.request.expires_at if issued.code else None}


@router.get("/account/recovery-requests", auth=SignedIn(),
            **spec(RequestsOut, NotAuthenticated, NotAccountAdmin, SetupRequired))
def recovery_requests(request):
    """List the account's admin actions waiting for a second admin's approval."""
    rows = recovery_passes.pending_requests(request.auth)
    return {"requests": [
        {"id": r.pk, "kind": r.kind, "user_id": r.user_id, "user_login": r.user.login,
         "requested_by": r.requested_by.login if r.requested_by else None, "reason": r.reason,
         "created_at": r.created_at, "expires_at": r.expires_at}
        for r in rows
    ]}


@router.post("/account/recovery-requests/{id}/approve", auth=SignedIn(),
             **spec(ApprovedOut, NotAuthenticated, NotAccountAdmin, AdminNeedsTwoFactor, SecondFactorRequired,
                    WrongPassword, InvalidConfirmationCode, SetupRequired, NotFound, Conflict, TwoFactorDisabled,
                    Throttled, InvalidInput, unsafe=True))
def approve(request, id: str, body: ApproveIn):
    """Approve another admin's request with one's own password and second factor; it takes effect at once."""
    done = recovery_passes.approve(request.auth, id, body.password, origin(request),
                                   code=body.code, second_factor_fresh=_fresh(request))
    signin_state.stepped_up(request, body.code)
    return {"kind": done.request.kind, "recovery_pass": done.code,
            "expires_at": done.request.expires_at if done.code else None}
