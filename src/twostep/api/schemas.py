"""Request and response shapes of API v1, and the OpenAPI notes on each route's errors.

Schemas only validate shape; every rule stays in the services. Strings are bounded and must be
valid Unicode without NUL, so odd input is a 422 instead of a database error.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from ninja import Field, Schema
from pydantic import (
    AfterValidator,
    ConfigDict,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from ..http import status_for
from ..services.accounts import MAX_PASSWORD
from ..services.errors import InvalidInput, ServiceError
from .errors import CsrfFailed

# Text ---------------------------------------------------------------------------------------


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError(_("must not contain NUL characters."))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. "\ud800" in the JSON
        raise ValueError(_("must be valid Unicode text.")) from None
    return value


# What _clean_text refuses, said in the schema too, so that a client generating input from the
# OpenAPI document (schemathesis) never sends a "valid" string that is refused.
_NO_NUL = {"pattern": "^[^\\u0000]*$"}


def text(max_length: int, min_length: int = 0):
    """A string type of bounded length that the database and the hashers can take."""
    return Annotated[
        str, StringConstraints(min_length=min_length, max_length=max_length), AfterValidator(_clean_text),
        WithJsonSchema({"type": "string", "minLength": min_length, "maxLength": max_length, **_NO_NUL}),
    ]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError(_("must contain more than spaces."))
    return value


def prose(max_length: int):
    """Text a person writes, which must say something: not empty, not only white space.

    The pattern is the same rule for a client: a character that is neither white space nor
    NUL (Python's \\s is exactly what str.strip() removes).
    """
    return Annotated[
        str, StringConstraints(min_length=1, max_length=max_length), AfterValidator(_clean_text),
        AfterValidator(_not_blank),
        WithJsonSchema({"type": "string", "minLength": 1, "maxLength": max_length,
                        "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"}),
    ]


Login = text(150, 1)
Password = text(MAX_PASSWORD, 1)  # the same limit as the pages (services/accounts.py)
Code = text(64, 1)
Reason = prose(500)  # the limit of services/recovery.py
SearchText = text(150)

# Requests -----------------------------------------------------------------------------------


class LoginIn(Schema):
    login: Login
    password: Password


class SecondFactorIn(Schema):
    # Which proof goes with which method, said in the schema too: a code for every method but
    # `webauthn`, which carries the browser's credential instead (api/auth.py refuses the rest).
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"properties": {"method": {"enum": ["totp", "backup_code", "recovery_pass"]},
                        "code": {"type": "string"}},
         "required": ["method", "code"]},
        {"properties": {"method": {"const": "webauthn"}, "credential": {"type": "object"}},
         "required": ["method", "credential"]},
    ]})

    method: Literal["totp", "backup_code", "webauthn", "recovery_pass"] = Field(
        description="`totp`: the 6-digit code from the authenticator app; `backup_code`: one of the "
                    "backup codes (a backup code sent as `totp` is taken as a backup code); "
                    "`webauthn`: a security key or passkey (`credential`, after "
                    "POST /auth/webauthn/options); `recovery_pass`: the one-time pass from the account "
                    "admin (then register a new authenticator)."
    )
    code: Code | None = Field(None, description="For every method but `webauthn`.")
    credential: dict | None = Field(
        None, description="For `webauthn`: the browser's PublicKeyCredential as JSON "
                          "(navigator.credentials.get(), encoded as by PublicKeyCredential.toJSON()).")
    remember_browser: StrictBool = Field(
        False, description="Remember this browser for the days the account allows: later sign-ins "
                           "from it need only the password (an HttpOnly cookie, set only on success).")


class PasswordIn(Schema):
    password: Password = Field(description="The user's password, asked again before the change.")


class CodeIn(Schema):
    code: Code = Field(description="The 6-digit code the authenticator app shows now.")


class DisableIn(Schema):
    password: Password
    code: Code = Field(description="A current app code or an unused backup code.")


STEP_UP_CODE = ("The admin's own current app code or an unused backup code. It may be left out only "
                "within a few minutes of signing in with a second factor in this session; otherwise "
                "the answer is 403 `second_factor_required`.")


class AdminDisableIn(Schema):
    reason: Reason = Field(description="Why (1 to 500 characters); kept in the audit log and e-mailed.")
    password: Password = Field(description="The admin's own password.")
    code: Code | None = Field(None, description=STEP_UP_CODE)


class PolicyIn(Schema):
    # Each field is optional; those sent are changed (at least one must be sent). Only
    # `require_two_factor_from` takes null; the default None of the others only means "not sent".
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})
    require_two_factor: StrictBool = None
    require_two_factor_from: date | None = Field(
        None, description="ISO date from which 2FA is required (reminders before it), today or later; "
                          "null clears it.")
    require_second_admin: StrictBool = Field(
        None, description="An admin's switch-off or sign-in pass then waits for another admin's approval.")
    remember_browser_days: StrictInt = Field(
        None, ge=0, le=90, description="Days a browser may skip the second step after a full sign-in "
                                       "(\"Remember this browser\"), 1 to 90; 0 switches it off.")
    allow_passkeys: StrictBool = Field(
        None, description="Users may sign in with a passkey alone (no password): it counts as two factors.")


class QuerySchema(Schema):
    """Query parameters, and only those listed: a misspelt one (`?limt=5`) is a 422 naming it,
    not a filter silently left out (the OpenAPI document lists the parameters, closed).

    Ninja hands the model only the listed keys; the request it passes as context has the rest.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _keep_unlisted(cls, data, info: ValidationInfo):
        request = (info.context or {}).get("request")
        if request is None or not isinstance(data, dict):
            return data
        unlisted = {key: request.GET[key] for key in request.GET if key not in cls.model_fields}
        return {**data, **unlisted}


class UsersQuery(QuerySchema):
    q: SearchText = Field("", description="Part of a login or e-mail address.")
    enrolled: bool | None = Field(None, description="true: only users with 2FA; false: only those without.")
    cursor: SearchText | None = Field(None, description="`next` from the previous page.")
    limit: int = Field(50, ge=1, le=200)


class EventsQuery(QuerySchema):
    # A larger cursor would overflow PostgreSQL's bigint.
    cursor: int | None = Field(None, ge=1, le=2**63 - 1, description="`next` from the previous page.")


# Responses ----------------------------------------------------------------------------------

Stage = Literal["anonymous", "second_factor", "setup_required", "authenticated"]


class ErrorOut(Schema):
    """An error. Some carry more items: `retry_after` (429, 503 `busy`), `fields` (422), `clock_skew_seconds`."""

    model_config = ConfigDict(extra="allow")
    error: str = Field(description="A stable snake_case code.")
    message: str = Field(description="Text for a person, in the request's language.")


class AccountOut(Schema):
    id: int
    name: str
    require_two_factor: bool


class SessionUserOut(Schema):
    id: int
    login: str
    email: str
    is_admin: bool
    account: AccountOut


class SessionOut(Schema):
    stage: Stage
    user: SessionUserOut | None = Field(
        description="The signed-in user; during `second_factor` and `setup_required`, the user whose "
                    "password was accepted (who is not signed in yet); null when anonymous."
    )


class LoginOut(Schema):
    stage: Literal["authenticated", "second_factor", "setup_required"]
    methods: list[Literal["webauthn", "totp", "backup_code", "recovery_pass"]] = Field(
        None, description="Only at `second_factor`: the ways this user can pass it, the preferred first."
    )


class SecondFactorOut(Schema):
    stage: Literal["authenticated"]
    method: Literal["totp", "backup_code", "webauthn", "recovery_pass"] = Field(
        description="How the step was passed.")
    backup_codes_remaining: int


class LogoutOut(Schema):
    stage: Literal["anonymous"]


class TwoFactorOut(Schema):
    enabled: bool
    backup_codes_remaining: int
    backup_codes_generated_at: datetime | None
    backup_codes_low: bool = Field(description="True when 2FA is on and few codes are left.")
    backup_codes_saved: bool | None = Field(
        None, description="Whether the user confirmed saving the current set (POST "
                          "/api/v1/me/backup-codes/saved); null when there is no set. Until it is true, "
                          "ask the user to save the codes.")
    backup_codes_saved_at: datetime | None = None
    required_by_account: bool
    required_from: date | None = Field(
        None, description="The account's deadline for 2FA while it is still ahead and the user has none.")


class SetupOut(Schema):
    secret: str = Field(description="The base32 key (RFC 4648, unpadded), for typing in by hand.")
    grouped_secret: str = Field(description="The same key in groups of four, easier to read.")
    otpauth_uri: str
    qr_svg: str = Field(description="An inline SVG of the otpauth URI as a QR code.")


class ConfirmOut(Schema):
    enabled: Literal[True]
    replaced: bool = Field(description="True when this authenticator replaced an earlier one.")
    backup_codes: list[str] | None = Field(
        description="The new backup codes, shown this once: on first enabling, after a sign-in "
                    "with a backup code, or when no unused codes were left; null otherwise."
    )
    stage: Literal["authenticated"] = Field(
        description="The session is signed in (a forced setup completes the sign-in)."
    )


class BackupCodesOut(Schema):
    backup_codes: list[str] = Field(description="Shown this once; the earlier codes stop working. The set "
                                                "counts as unsaved until POST /api/v1/me/backup-codes/saved.")
    generated_at: datetime


class CodesSavedOut(Schema):
    backup_codes_saved: Literal[True]
    backup_codes_saved_at: datetime
    backup_codes_generated_at: datetime


class DisabledOut(Schema):
    enabled: Literal[False]


class AuthenticatorBriefOut(Schema):
    kind: Literal["totp", "webauthn"]
    name: str


class UserRowOut(Schema):
    id: int
    login: str
    email: str
    is_admin: bool
    two_factor_enabled: bool
    backup_codes_remaining: int
    last_login: datetime | None
    authenticators: list[AuthenticatorBriefOut] = Field(
        description="The user's confirmed authenticators (kind and name), oldest first.")


class UsersOut(Schema):
    users: list[UserRowOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class PolicyOut(Schema):
    require_two_factor: bool
    remember_browser_days: int | None = None
    require_two_factor_from: date | None = None
    require_second_admin: bool | None = None
    allow_passkeys: bool | None = None


class EventOut(Schema):
    id: int
    type: str
    description: str = Field(description="The type, in words, in the request's language.")
    at: datetime
    ip: str | None
    user_agent: str
    actor: str | None = Field(description="Who did it: a login, `operator`, or null.")


class EventsOut(Schema):
    events: list[EventOut]
    next: int | None = Field(description="Pass as `cursor` for older events; null when none are left.")


# Authenticators (several per user: apps, security keys, passkeys) -----------------------------

AuthenticatorName = text(60)


class AuthenticatorOut(Schema):
    id: int
    kind: Literal["totp", "webauthn"]
    name: str
    description: str = Field(description="What it is, in words: \"Authenticator app\", \"Security key\", \"Passkey\".")
    created_at: datetime
    last_used_at: datetime | None
    passkey: bool = Field(description="A passkey: it can sign in on its own where the account allows it.")


class AuthenticatorsOut(Schema):
    authenticators: list[AuthenticatorOut]
    backup_codes_remaining: int


class NewAppIn(Schema):
    password: Password = Field(description="The user's password, asked again before the change.")
    name: AuthenticatorName | None = Field(None, description="A name to tell it apart, e.g. \"Pixel 8\".")


class NewAppOut(SetupOut):
    id: int = Field(description="Confirm it with POST /me/authenticators/{id}/confirm.")


class AddedOut(Schema):
    id: int
    name: str = Field(description="The name kept (a number is added when the user has one so named).")
    backup_codes: list[str] | None = Field(
        description="New backup codes, shown this once, when this is the first authenticator (or none "
                    "were left); null otherwise.")


class NewKeyIn(Schema):
    password: Password = Field(description="The user's password, asked again before the change.")
    name: AuthenticatorName | None = Field(None, description="A name to tell it apart, e.g. \"YubiKey\".")
    passkey: StrictBool = Field(False, description="Ask for a passkey: a discoverable credential that "
                                                   "verifies the person (PIN or biometric).")


class CredentialIn(Schema):
    credential: dict = Field(description="The browser's PublicKeyCredential as JSON "
                                         "(PublicKeyCredential.toJSON(), base64url fields).")


class PublicKeyOptionsOut(Schema):
    model_config = ConfigDict(extra="allow")
    publicKey: dict = Field(description="The options for navigator.credentials.create() or .get(), as "
                                        "JSON (PublicKeyCredential.parseCreationOptionsFromJSON / "
                                        "parseRequestOptionsFromJSON read them).")


class RenameIn(Schema):
    name: AuthenticatorName


class RemoveIn(Schema):
    password: Password = Field(description="The user's password, asked again before the change.")


class RemovedOut(Schema):
    enabled: bool = Field(description="Whether two-factor authentication is still on.")


class PasskeyOut(Schema):
    stage: Literal["authenticated"]
    method: Literal["webauthn"]


# OpenAPI notes --------------------------------------------------------------------------------

CSRF_HEADER = {
    "in": "header",
    "name": "X-CSRFToken",
    "required": True,
    "description": "The value of the `csrftoken` cookie (set by GET /auth/session).",
    "schema": {"type": "string"},
}


# Better words for the docs than a class's default message, where the message varies.
_DOC_TEXT = {
    InvalidInput.code: _("The input has the wrong shape or value; the message names each field and "
                         "what is wrong."),
}


def spec(ok, *errors, unsafe: bool = False) -> dict:
    """Return a route's `response` and `openapi_extra`: its success shape and each error code.

    `errors` are ServiceError classes, or (class, status) where a route answers another status.
    Unsafe routes also list the CSRF refusal and the X-CSRFToken header.
    """
    listed = [e if isinstance(e, tuple) else (e, status_for(e)) for e in errors]
    if unsafe:
        listed = [*listed, (CsrfFailed, status_for(CsrfFailed))]
    by_status: dict[int, list[type[ServiceError]]] = {}
    for kind, status in listed:
        by_status.setdefault(status, []).append(kind)
    responses = {}
    for status, kinds in sorted(by_status.items()):
        lines = [format_lazy("- `{}`: {}", k.code, _DOC_TEXT.get(k.code, k.default_message)) for k in kinds]
        responses[status] = {"description": format_lazy("\n".join(["{}"] * len(lines)), *lines)}
    extra: dict = {"responses": responses}
    if unsafe:
        extra["parameters"] = [CSRF_HEADER]
    return {"response": {200: ok, **dict.fromkeys(by_status, ErrorOut)}, "openapi_extra": extra}

