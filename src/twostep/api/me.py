"""The signed-in user's own second factor: status, setup, backup codes, switching off, events."""

from __future__ import annotations

from ninja import Query, Router

from .. import signin_state
from ..http import origin
from ..services import activity, authenticators, deadlines, signin
from ..services.errors import (
    InvalidConfirmationCode,
    InvalidInput,
    NoPendingSetup,
    Throttled,
    TwoFactorDisabled,
    TwoFactorRequired,
    WrongPassword,
)
from ..services.factors import backup_codes, enabled
from .errors import NotAuthenticated, SetupRequired
from .schemas import (
    BackupCodesOut,
    CodeIn,
    CodesSavedOut,
    ConfirmOut,
    DisabledOut,
    DisableIn,
    EventsOut,
    EventsQuery,
    PasswordIn,
    SetupOut,
    TwoFactorOut,
    spec,
)
from .security import MaySetUp, SignedIn

router = Router(tags=["me"])


@router.get("/two-factor", auth=MaySetUp(), **spec(TwoFactorOut, NotAuthenticated))
def two_factor(request):
    """Say whether 2FA is on, how many backup codes are left and whether the account requires it."""
    # The signed-in (or setting-up) user as this request read it, account included: not again by login.
    user = request.auth
    on = enabled(user)
    left = backup_codes.remaining(user)
    code_set = backup_codes.current_set(user)
    shown_set = code_set if on else None
    return {
        "enabled": on,
        "backup_codes_remaining": left,
        "backup_codes_generated_at": code_set.generated_at if code_set else None,
        "backup_codes_low": on and backup_codes.is_low(left),
        "backup_codes_saved": backup_codes.is_saved(shown_set),
        "backup_codes_saved_at": shown_set.saved_at if shown_set else None,
        "required_by_account": authenticators.is_required(user),
        "required_from": deadlines.pending_deadline(user),
    }


@router.post("/two-factor/setup", auth=MaySetUp(),
             **spec(SetupOut, NotAuthenticated, WrongPassword, Throttled, InvalidInput, unsafe=True))
def start_setup(request, body: PasswordIn):
    """Start setting up an authenticator app (or a new one): returns its key, pending until confirmed.

    Any authenticator already confirmed keeps working until the new one is confirmed.
    """
    setup = authenticators.start_app(request.auth, body.password, origin(request))
    return {"secret": setup.secret, "grouped_secret": setup.grouped_secret,
            "otpauth_uri": setup.otpauth_uri, "qr_svg": setup.qr_svg}


@router.post("/two-factor/confirm", auth=MaySetUp(),
             **spec(ConfirmOut, NotAuthenticated, InvalidConfirmationCode, NoPendingSetup, InvalidInput,
                    unsafe=True))
def confirm_setup(request, body: CodeIn):
    """Switch the pending authenticator on with its first code.

    The user's other sessions end; this one stays, signed in. A code from a phone whose clock
    is off gets `invalid_code` with `clock_skew_seconds`.
    """
    user, forced = request.auth, not request.user.is_authenticated
    # v1 knew one app per user: a new one confirmed here replaces the earlier apps (keys stay).
    terms = signin.new_authenticator_terms(signin_state.of(request), replace_apps=True)
    done = authenticators.confirm_app(user, body.code, origin(request), **terms)
    if forced:
        signin.setup_done(signin_state.of(request), user, origin(request))
    else:
        signin_state.keep_session_with_new_factor(request, user)
    signin_state.recovered(request)
    made = done.backup_codes
    return {"enabled": True, "replaced": done.replaced, "stage": "authenticated",
            "backup_codes": made.codes if made is not None else None}


@router.post("/backup-codes", auth=SignedIn(),
             **spec(BackupCodesOut, NotAuthenticated, WrongPassword, SetupRequired, TwoFactorDisabled,
                    Throttled, InvalidInput, unsafe=True))
def generate_backup_codes(request, body: PasswordIn):
    """Make a new set of backup codes; the old ones stop working at once."""
    new = backup_codes.generate(request.auth, body.password, origin(request))
    return {"backup_codes": new.codes, "generated_at": new.generated_at}


@router.post("/backup-codes/saved", auth=SignedIn(),
             **spec(CodesSavedOut, NotAuthenticated, SetupRequired, TwoFactorDisabled, unsafe=True))
def backup_codes_saved(request):
    """Confirm that the user has saved their current set of backup codes; repeating it changes nothing.

    A new set (first enabling, new codes, a new authenticator after a recovery) counts as unsaved
    until this is called: `GET /api/v1/me/two-factor` says `backup_codes_saved: false` till then.
    """
    if not enabled(request.auth):
        raise TwoFactorDisabled()
    code_set = backup_codes.confirm_saved(request.auth, origin(request))
    return {"backup_codes_saved": True, "backup_codes_saved_at": code_set.saved_at,
            "backup_codes_generated_at": code_set.generated_at}


@router.post("/two-factor/disable", auth=SignedIn(),
             **spec(DisabledOut, NotAuthenticated, InvalidConfirmationCode, WrongPassword, TwoFactorRequired,
                    SetupRequired, TwoFactorDisabled, Throttled, InvalidInput, unsafe=True))
def disable(request, body: DisableIn):
    """Switch 2FA off with the password and a current app or backup code.

    A wrong code answers 400 `invalid_code` (the sign-in's 401 would read as "signed out"), and
    counts toward the same throttle as the sign-in's second step.
    """
    user = request.auth
    authenticators.disable(user, body.password, body.code, origin(request))
    signin_state.keep_session(request, user)
    return {"enabled": False}


@router.get("/security-events", auth=SignedIn(),
            **spec(EventsOut, NotAuthenticated, SetupRequired, InvalidInput))
def security_events(request, params: Query[EventsQuery]):
    """List the user's own security events, newest first, a page at a time."""
    events, next_cursor = activity.own_events(request.auth, before=params.cursor)
    return {
        "events": [
            {"id": e.pk, "type": e.type, "description": activity.describe(e), "at": e.at,
             "ip": e.ip, "user_agent": e.user_agent, "actor": e.actor_label or None}
            for e in events
        ],
        "next": next_cursor,
    }
