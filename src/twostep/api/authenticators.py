"""A user's authenticators (apps, security keys, passkeys), and the WebAuthn steps of sign-in.

`router` is mounted at /me, `auth_router` at /auth. The work is the services': this file only
carries JSON in and out.
"""

from __future__ import annotations

import json

from django.utils.translation import gettext_lazy as _
from ninja import Router

from .. import signin_state
from ..http import origin, relying_party
from ..services import authenticators, security_keys, signin
from ..services.errors import (
    Conflict,
    InvalidCode,
    InvalidInput,
    NoPendingSetup,
    NoPendingSignIn,
    NotFound,
    PasskeysNotAllowed,
    Throttled,
    TwoFactorRequired,
    WrongPassword,
)
from ..services.factors import backup_codes
from .errors import NotAuthenticated, SetupRequired
from .schemas import (
    AddedOut,
    AuthenticatorsOut,
    CodeIn,
    CredentialIn,
    NewAppIn,
    NewAppOut,
    NewKeyIn,
    PasskeyOut,
    PublicKeyOptionsOut,
    RemovedOut,
    RemoveIn,
    RenameIn,
    spec,
)
from .security import SignedIn, not_during_setup

router = Router(tags=["authenticators"], auth=SignedIn())
auth_router = Router(tags=["sign-in"])


def _row(authenticator) -> dict:
    return {"id": authenticator.pk, "kind": authenticator.kind, "name": authenticator.name,
            "description": authenticators.describe(authenticator), "created_at": authenticator.created_at,
            "last_used_at": authenticator.last_used_at, "passkey": authenticator.passkey}


def _added(request, done) -> dict:
    signin_state.keep_session_with_new_factor(request, request.auth)  # the others ended with the new factor
    signin_state.recovered(request)
    made = done.backup_codes
    return {"id": done.authenticator.pk, "name": done.authenticator.name,
            "backup_codes": made.codes if made is not None else None}


@router.get("/authenticators", **spec(AuthenticatorsOut, NotAuthenticated, SetupRequired))
def listing(request):
    """List the user's authenticators, oldest first, and the backup codes left."""
    user = request.auth
    return {"authenticators": [_row(a) for a in authenticators.listing(user)],
            "backup_codes_remaining": backup_codes.remaining(user)}


@router.post("/authenticators/totp",
             **spec(NewAppOut, NotAuthenticated, WrongPassword, SetupRequired, Throttled, InvalidInput,
                    unsafe=True))
def add_app(request, body: NewAppIn):
    """Start adding an authenticator app: its key and QR code, pending until its first code.

    The user's other authenticators keep working; confirm with POST /me/authenticators/{id}/confirm.
    """
    setup = authenticators.start_app(request.auth, body.password, origin(request), name=body.name)
    return {"id": setup.authenticator_id, "secret": setup.secret, "grouped_secret": setup.grouped_secret,
            "otpauth_uri": setup.otpauth_uri, "qr_svg": setup.qr_svg}


@router.post("/authenticators/webauthn/options",
             **spec(PublicKeyOptionsOut, NotAuthenticated, WrongPassword, SetupRequired, Throttled,
                    InvalidInput, unsafe=True))
def key_options(request, body: NewKeyIn):
    """Start adding a security key or passkey: the options for navigator.credentials.create().

    Send the browser's answer to POST /me/authenticators/webauthn within 5 minutes, from the
    same session.
    """
    options = security_keys.start(signin_state.of(request), request.auth, body.password, origin(request),
                                  relying_party(request), name=body.name, passkey=body.passkey)
    return {"publicKey": options}


@router.post("/authenticators/webauthn",
             **spec(AddedOut, NotAuthenticated, SetupRequired, NoPendingSetup, Conflict, InvalidInput, unsafe=True))
def add_key(request, body: CredentialIn):
    """Finish adding a security key or passkey with the browser's answer to the options."""
    done = security_keys.finish(signin_state.of(request), request.auth, body.credential, origin(request))
    return _added(request, done)


@router.post("/authenticators/{int:id}/confirm",
             **spec(AddedOut, NotAuthenticated, (InvalidCode, 400), NoPendingSetup, NotFound, SetupRequired,
                    InvalidInput, unsafe=True))
def confirm_app(request, id: int, body: CodeIn):
    """Confirm a pending authenticator app with its first code; it joins the others."""
    done = authenticators.confirm_app(request.auth, body.code, origin(request), authenticator_id=id,
                                      **signin.new_authenticator_terms(signin_state.of(request), replace_apps=False))
    return _added(request, done)


@router.patch("/authenticators/{int:id}",
              **spec(AddedOut, NotAuthenticated, NotFound, SetupRequired, InvalidInput, unsafe=True))
def rename(request, id: int, body: RenameIn):
    """Rename one of the user's authenticators (names are unique per user, ignoring case)."""
    row = authenticators.rename(request.auth, id, body.name, origin(request))
    return {"id": row.pk, "name": row.name, "backup_codes": None}


@router.delete("/authenticators/{int:id}",
               **spec(RemovedOut, NotAuthenticated, NotFound, WrongPassword, TwoFactorRequired,
                      SetupRequired, Throttled, InvalidInput, unsafe=True))
def remove(request, id: int, body: RemoveIn):
    """Remove one authenticator (password again). Removing the last one switches 2FA off,
    which is refused where the account requires 2FA."""
    still_on = authenticators.remove(request.auth, id, body.password, origin(request))
    signin_state.keep_session(request, request.auth)
    return {"enabled": still_on}


# Sign-in ---------------------------------------------------------------------------------------

def _passkey_flag(request) -> bool:
    """Read the optional body {"passkey": bool} (an empty body is allowed)."""
    if not request.body.strip():
        return False
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError):
        raise InvalidInput(_("The request body must be a JSON object.")) from None
    if not isinstance(data, dict):
        raise InvalidInput(_("The request body must be a JSON object."))
    flag = data.get("passkey", False)
    if not isinstance(flag, bool):
        raise InvalidInput(_("passkey must be true or false."))
    return flag


def _with_passkey_body(route: dict) -> dict:
    """Declare the optional body _passkey_flag reads (the view reads it itself: it may be empty)."""
    schema = {"type": "object", "properties": {"passkey": {"type": "boolean", "default": False}}}
    route["openapi_extra"]["requestBody"] = {"required": False,
                                             "content": {"application/json": {"schema": schema}}}
    return route


@auth_router.post("/webauthn/options", auth=not_during_setup,
                  **_with_passkey_body(spec(PublicKeyOptionsOut, NoPendingSignIn, SetupRequired, InvalidInput,
                                            unsafe=True)))
def sign_in_options(request):
    """Options for navigator.credentials.get(): during `second_factor` for the user's keys, or
    with `{"passkey": true}` for a passkey sign-in (anyone; whether the account allows passkeys
    is decided when the answer comes)."""
    options = signin.webauthn_options(signin_state.of(request), relying_party(request),
                                      passkey=_passkey_flag(request))
    return {"publicKey": options}


@auth_router.post("/passkey", auth=not_during_setup,
                  **spec(PasskeyOut, InvalidCode, PasskeysNotAllowed, Throttled, SetupRequired, InvalidInput,
                         unsafe=True))
def passkey(request, body: CredentialIn):
    """Sign in with a passkey alone, after POST /auth/webauthn/options with `{"passkey": true}`.

    Any earlier sign-in of the session ends; the session key and the `csrftoken` cookie change.
    """
    signin.passkey(signin_state.of(request), body.credential, origin(request))
    return {"stage": "authenticated", "method": "webauthn"}
