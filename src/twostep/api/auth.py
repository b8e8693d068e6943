"""Signing in and out: the session's stage, the password step, the second step, sign-out."""

from __future__ import annotations

from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.utils.translation import gettext_lazy as _
from ninja import Router

from .. import signin_state
from ..http import origin
from ..services import signin
from ..services.admission import Busy
from ..services.errors import InvalidCode, InvalidCredentials, InvalidInput, NoPendingSignIn, Throttled
from ..services.factors import backup_codes
from ..services.factors.backup_codes import CodeAlreadyUsed
from ..services.signin import AUTHENTICATED, SECOND_FACTOR, SETUP_REQUIRED
from .errors import SetupRequired
from .schemas import (
    LoginIn,
    LoginOut,
    LogoutOut,
    SecondFactorIn,
    SecondFactorOut,
    SessionOut,
    spec,
)
from .security import not_during_setup

router = Router(tags=["sign-in"])


def _user_view(user) -> dict | None:
    if user is None:
        return None
    account = user.account
    return {
        "id": user.pk, "login": user.login, "email": user.email, "is_admin": user.is_account_admin,
        "account": {"id": account.pk, "name": account.name, "require_two_factor": account.require_two_factor},
    }


@router.get("/session", **spec(SessionOut))
def session(request):
    """Say how far this session's sign-in has got; set the `csrftoken` cookie."""
    get_token(request)
    stage = signin_state.stage(request)
    if request.user.is_authenticated:
        user = request.user
    elif stage in (SECOND_FACTOR, SETUP_REQUIRED):
        user = signin_state.pending_user(request, stage)
    else:
        user = None
    return {"stage": stage, "user": _user_view(user)}


@router.post("/login", auth=not_during_setup, exclude_unset=True,
             **spec(LoginOut, InvalidCredentials, Throttled, SetupRequired, InvalidInput, Busy, unsafe=True))
def login(request, body: LoginIn):
    """Check the login and password; say what the sign-in needs next.

    At `second_factor` or `setup_required` the session is not signed in yet: it may only take
    the second step or set up an authenticator. A right password ends any sign-in the session
    had; the session key changes either way, and the `csrftoken` cookie on a full sign-in.
    A full sign-in also sets the `twostep_device` cookie: next time this browser's password
    check for the same login is admitted first when many sign-ins arrive at once. When the
    server is too busy to check the password in time the answer is 503 `busy` with `Retry-After`
    (nothing was checked or counted: send the same request again then).
    """
    outcome = signin.password(signin_state.of(request), body.login, body.password, origin(request),
                              remembered_token=signin_state.remembered_token(request),
                              device_cookie=signin_state.device_cookie(request))
    if outcome.stage == SECOND_FACTOR:
        return {"stage": SECOND_FACTOR, "methods": list(outcome.methods)}
    return {"stage": outcome.stage}


@router.post("/second-factor", auth=not_during_setup,
             **spec(SecondFactorOut, InvalidCode, CodeAlreadyUsed, NoPendingSignIn, Throttled, SetupRequired,
                    InvalidInput, unsafe=True))
def second_factor(request, response: HttpResponse, body: SecondFactorIn):
    """Finish the sign-in with any of the user's methods (each proof is accepted once).

    Wrong proofs of every kind count together per user; after a few, attempts get 429 with
    `Retry-After`, and a throttled attempt is not checked at all, right or wrong.
    """
    if body.method == "webauthn":
        if body.credential is None:
            raise InvalidInput(_("credential is required for the webauthn method."))
        proof = body.credential
    else:
        if body.code is None:
            raise InvalidInput(_("code is required."))
        proof = body.code
    outcome = signin.second_factor(signin_state.of(request), body.method, proof, origin(request))
    if body.remember_browser:  # only now, after both factors (scheb/two-factor-bundle #253)
        signin_state.remember_browser(request, response)
    left = outcome.backup_codes_remaining  # known after a backup code; else read now
    if left is None:
        left = backup_codes.remaining(outcome.user)
    return {"stage": AUTHENTICATED, "method": outcome.method, "backup_codes_remaining": left}


@router.post("/logout", **spec(LogoutOut, unsafe=True))
def logout(request):
    """Sign out, or abandon a sign-in half done: the session is emptied and its key changes."""
    signin_state.sign_out(request)
    return {"stage": "anonymous"}
