"""Signing in and out: the session's stage, the password step, the second step, sign-out."""

from __future__ import annotations

from django.contrib.auth import logout as django_logout
from django.http import HttpResponse
from django.middleware.csrf import get_token
from ninja import Router

from .. import signin_state
from ..http import origin
from ..services import verification
from ..services.errors import InvalidCode, InvalidCredentials, InvalidInput, NoPendingSignIn, Throttled
from ..services.verification import AUTHENTICATED, METHODS, SECOND_FACTOR, SETUP_REQUIRED
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
             **spec(LoginOut, InvalidCredentials, Throttled, SetupRequired, InvalidInput, unsafe=True))
def login(request, body: LoginIn):
    """Check the login and password; say what the sign-in needs next.

    At `second_factor` or `setup_required` the session is not signed in yet: it may only take
    the second step or set up an authenticator. The session key changes either way, and the
    `csrftoken` cookie changes on a full sign-in.
    """
    step = verification.check_password(body.login, body.password, origin(request),
                                       remembered_token=signin_state.remembered_token(request))
    if step.stage == AUTHENTICATED:
        signin_state.finish(request, step.user)
        return {"stage": AUTHENTICATED}
    if request.user.is_authenticated:
        django_logout(request)  # a new sign-in in progress ends the one this session had
    signin_state.begin(request, step.user, step.stage)
    if step.stage == SECOND_FACTOR:
        return {"stage": SECOND_FACTOR, "methods": list(METHODS)}
    return {"stage": SETUP_REQUIRED}


@router.post("/second-factor", auth=not_during_setup,
             **spec(SecondFactorOut, InvalidCode, NoPendingSignIn, Throttled, SetupRequired, InvalidInput,
                    unsafe=True))
def second_factor(request, response: HttpResponse, body: SecondFactorIn):
    """Finish the sign-in with an app code or a backup code (each is accepted once).

    Wrong codes of both kinds count together per user; after a few, attempts get 429 with
    `Retry-After`, and a throttled attempt is not checked at all, right or wrong.
    """
    user = signin_state.pending_user(request, SECOND_FACTOR)
    if user is None:
        raise NoPendingSignIn()
    if body.method == "recovery_pass":
        from ..services import recovery_passes  # the admin's one-time pass: straight to a new authenticator

        recovery_passes.use(user.pk, body.code, origin(request))
        signin_state.finish(request, user, recovery="recovery_pass")
        return {"stage": AUTHENTICATED, "method": "recovery_pass", "backup_codes_remaining": 0}
    accepted = verification.check_code(user.pk, body.code, origin(request), method=body.method)
    signin_state.finish(request, user, recovery=accepted.method == "backup_code")
    if body.remember_browser:  # only now, after both factors (scheb/two-factor-bundle #253)
        signin_state.remember_browser(request, response)
    return {"stage": AUTHENTICATED, "method": accepted.method,
            "backup_codes_remaining": accepted.backup_codes_remaining}


@router.post("/logout", **spec(LogoutOut, unsafe=True))
def logout(request):
    """Sign out, or abandon a sign-in half done: the session is emptied and its key changes."""
    signin_state.sign_out(request)
    return {"stage": "anonymous"}
