"""Security keys and passkeys (W3C Web Authentication Level 3, through py_webauthn).

A ceremony is two requests: the options (with a fresh challenge, kept by the caller in the
session as a `Ceremony`) and the browser's answer, checked here against that ceremony —
challenge, origin, RP ID hash, user presence, user verification where it was required, the
signature, and the sign count. A challenge is answered once (`SpentChallenge`, a unique row)
however many requests race with it.

A sign count that does not grow means two authenticators hold one private key: the answer is
refused and audited as a suspected clone. Synced passkeys always report 0, so 0 after 0 passes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http.request import split_domain_port
from django.utils.translation import gettext_lazy as _
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.base64url_to_bytes import base64url_to_bytes
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ...models import Authenticator, SecurityEvent, SpentChallenge, User
from .. import audit
from ..errors import Conflict, InvalidCode, InvalidInput, NoPendingSetup
from . import MalformedProof, Verified

METHOD = "webauthn"
KIND = Authenticator.Kind.WEBAUTHN
# RFC 8176: "hwk" a key bound to one device, "swk" a key that may be copied (a synced passkey);
# "user" is added when the authenticator verified the person (PIN or biometric).
AMR = ("hwk",)
CEREMONY_SECONDS = 300  # the browser's timeout; the session keeps a challenge as long
DEFAULT_KEY_NAME = _("Security key")
DEFAULT_PASSKEY_NAME = _("Passkey")
_TRANSPORTS = {t.value for t in AuthenticatorTransport}


@dataclass(frozen=True)
class RelyingParty:
    """Who asks for the credential: the RP ID (a domain) and the exact origins allowed."""

    id: str
    name: str
    origins: tuple[str, ...]


def relying_party(host: str, secure: bool) -> RelyingParty:
    """Return the relying party for a request to `host` (settings first, else the host itself)."""
    domain, port = split_domain_port(host)
    scheme = "https" if secure else "http"
    rp_id = settings.TWOSTEP_WEBAUTHN_RP_ID or domain.strip("[]")
    origins = tuple(settings.TWOSTEP_WEBAUTHN_ORIGINS) or (f"{scheme}://{host.lower()}",)
    return RelyingParty(rp_id, settings.TWOSTEP_WEBAUTHN_RP_NAME, origins)


@dataclass(frozen=True)
class Ceremony:
    """What the options promised, kept in the session until the answer comes (JSON-safe)."""

    challenge: str  # base64url
    rp_id: str
    origins: tuple[str, ...]
    user_verification: str  # "required" or "preferred"
    user_id: int | None = None  # whose credentials were allowed (None: any, for a passkey)
    passkey: bool = False
    name: str = ""

    def to_json(self) -> dict:
        return {**asdict(self), "origins": list(self.origins)}

    @classmethod
    def from_json(cls, data) -> Ceremony | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(**{**data, "origins": tuple(data["origins"])})
        except (KeyError, TypeError):
            return None


def offered(user, facts) -> bool:
    return KIND in facts.kinds


def describe(authenticator: Authenticator) -> str:
    return str(_("Passkey") if authenticator.passkey else _("Security key"))


def amr_of(row: Authenticator, user_verified: bool) -> tuple[str, ...]:
    """Say what a use of this credential proved (RFC 8176)."""
    kind = "swk" if row.backup_eligible else "hwk"
    return (kind, "user") if user_verified else (kind,)


def user_handle(user: User) -> bytes:
    """Return the user's opaque WebAuthn handle, making it on first use (no personal data in it)."""
    if not user.webauthn_handle:
        handle = bytes_to_base64url(secrets.token_bytes(32))
        # Two first registrations at once must agree on one handle: the first write wins.
        User.objects.filter(pk=user.pk, webauthn_handle="").update(webauthn_handle=handle)
        user.webauthn_handle = User.objects.values_list("webauthn_handle", flat=True).get(pk=user.pk)
    return base64url_to_bytes(user.webauthn_handle)


def _descriptors(user: User) -> list[PublicKeyCredentialDescriptor]:
    rows = Authenticator.objects.filter(user=user, kind=KIND, confirmed=True).values_list(
        "credential_id", "transports")
    return [PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(credential_id),
        transports=[AuthenticatorTransport(t) for t in transports or () if t in _TRANSPORTS] or None)
        for credential_id, transports in rows]


def _options_json(options) -> dict:
    import json

    return json.loads(options_to_json(options))


# Registration ------------------------------------------------------------------------------

def registration_options(user: User, rp: RelyingParty, *, passkey: bool, name: str) -> tuple[dict, Ceremony]:
    """Return the creation options for a new key of `user` and the ceremony to keep meanwhile.

    A passkey must be discoverable and verify the person; a security key need do neither. The
    user's keys are excluded, so one authenticator is never registered twice.
    """
    uv = UserVerificationRequirement.REQUIRED if passkey else UserVerificationRequirement.PREFERRED
    options = generate_registration_options(
        rp_id=rp.id, rp_name=rp.name, user_name=user.login, user_id=user_handle(user),
        user_display_name=user.login, timeout=CEREMONY_SECONDS * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED if passkey else ResidentKeyRequirement.PREFERRED,
            user_verification=uv),
        exclude_credentials=_descriptors(user),
    )
    ceremony = Ceremony(bytes_to_base64url(options.challenge), rp.id, rp.origins, uv.value,
                        user_id=user.pk, passkey=passkey, name=name)
    return _options_json(options), ceremony


def check_registration(user: User, credential, ceremony: Ceremony | None) -> dict:
    """Check the browser's answer to the creation options; return the new row's fields.

    Raises InvalidInput when the answer does not fit the ceremony, NoPendingSetup when no
    registration of this user is waiting, Conflict for a key registered already (nothing is stored).
    """
    if ceremony is None or ceremony.user_id != user.pk:
        raise NoPendingSetup(_("The request to your security key expired. Start again."))
    if not isinstance(credential, (dict, str)):
        raise InvalidInput(_("credential must be the browser's PublicKeyCredential as JSON."))
    try:
        done = verify_registration_response(
            credential=credential, expected_challenge=base64url_to_bytes(ceremony.challenge),
            expected_rp_id=ceremony.rp_id, expected_origin=list(ceremony.origins),
            require_user_verification=ceremony.user_verification == "required")
    except (WebAuthnException, ValueError, TypeError, KeyError):
        raise InvalidInput(_("Your security key's answer could not be checked. Try again.")) from None
    if not _spend_challenge(ceremony.challenge):
        raise NoPendingSetup(_("The request to your security key expired. Start again."))
    credential_id = bytes_to_base64url(done.credential_id)
    if Authenticator.objects.filter(credential_id=credential_id).exists():
        raise Conflict(_("This security key is registered already."))
    transports = (credential.get("response") or {}).get("transports") if isinstance(credential, dict) else None
    return {
        "kind": KIND, "name": ceremony.name, "credential_id": credential_id,
        "public_key": done.credential_public_key, "sign_count": done.sign_count,
        "transports": [t for t in transports or () if t in _TRANSPORTS][:8],
        "aaguid": str(done.aaguid)[:36],
        "backup_eligible": done.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        "backup_state": bool(done.credential_backed_up), "passkey": ceremony.passkey,
    }


# Authentication ----------------------------------------------------------------------------

def authentication_options(user: User | None, rp: RelyingParty) -> tuple[dict, Ceremony]:
    """Return request options and their ceremony: the user's keys, or any passkey (no user).

    The second step prefers user verification; a passkey sign-in requires it, since the key is
    then both factors at once (NIST SP 800-63B-4: a multi-factor cryptographic authenticator).
    """
    if user is None:
        uv, allowed = UserVerificationRequirement.REQUIRED, []
    else:
        uv, allowed = UserVerificationRequirement.PREFERRED, _descriptors(user)
    options = generate_authentication_options(rp_id=rp.id, timeout=CEREMONY_SECONDS * 1000,
                                              allow_credentials=allowed, user_verification=uv)
    ceremony = Ceremony(bytes_to_base64url(options.challenge), rp.id, rp.origins, uv.value,
                        user_id=user.pk if user is not None else None)
    return _options_json(options), ceremony


def credential_owner(credential) -> tuple[Authenticator, bytes | None] | None:
    """Find the registered key an assertion names, and the user handle it carries; or None."""
    if not isinstance(credential, (dict, str)):
        return None
    try:
        parsed = parse_authentication_credential_json(credential)
    except (WebAuthnException, ValueError, TypeError):
        return None
    row = Authenticator.objects.select_related("user__account").filter(
        credential_id=parsed.id[:1400], kind=KIND, confirmed=True).first()
    return (row, parsed.response.user_handle) if row is not None else None


def verify(user: User, proof, now, origin) -> Verified | None:
    """Check an assertion by one of the user's keys; spend its challenge; None when wrong.

    `proof` is {"credential": the browser's JSON, "challenge": the session's Ceremony JSON}.
    Runs inside `attempts.guarded_attempt` (the user's row locked).
    """
    ceremony = Ceremony.from_json((proof or {}).get("challenge"))
    if ceremony is None:
        # Nothing was asked of the key in this session (or it was over 5 minutes ago): an old
        # or replayed answer can never be right, so it is refused without counting.
        raise MalformedProof(_("The request to your security key expired. Try again."))
    if ceremony.user_id is not None and ceremony.user_id != user.pk:
        return None
    found = credential_owner(proof.get("credential"))
    if found is None or found[0].user_id != user.pk:
        return None  # unknown, or another user's key: a wrong proof like any other
    row, handle = found
    if ceremony.user_id is None and (handle is None or user.webauthn_handle == ""
                                     or handle != base64url_to_bytes(user.webauthn_handle)):
        return None  # a discoverable sign-in must name the key's own user (WebAuthn §7.2 step 6)
    try:
        # The sign count is checked below, after the signature: an unsigned low count must not
        # be able to brand the user's real key a clone.
        checked = verify_authentication_response(
            credential=proof["credential"], expected_challenge=base64url_to_bytes(ceremony.challenge),
            expected_rp_id=ceremony.rp_id, expected_origin=list(ceremony.origins),
            credential_public_key=bytes(row.public_key), credential_current_sign_count=0,
            require_user_verification=ceremony.user_verification == "required")
    except (WebAuthnException, ValueError, TypeError, KeyError):
        return None
    if not _spend_challenge(ceremony.challenge):
        return None
    new, stored = checked.new_sign_count, row.sign_count
    if (new or stored) and new <= stored:
        audit.record(SecurityEvent.Type.CLONED_KEY_SUSPECTED, user=user, origin=origin,
                     authenticator=row.name, sign_count=new, stored_sign_count=stored)
        raise InvalidCode(_("This security key was refused: its counter went backwards, so it may "
                            "have been copied. Use another way to sign in, and remove this key."))
    won = Authenticator.objects.filter(pk=row.pk, sign_count=stored).update(
        sign_count=new, backup_state=checked.credential_backed_up, last_used_at=now)
    if not won:
        return None
    return Verified(METHOD, amr_of(row, checked.user_verified), authenticator_id=row.pk)


def _spend_challenge(challenge: str) -> bool:
    """Mark a challenge answered; False when it was answered already (a replay)."""
    from ...core import clock

    now = clock.utcnow()
    digest = hashlib.sha256(challenge.encode()).hexdigest()
    try:
        with transaction.atomic():
            SpentChallenge.objects.create(digest=digest, at=now)
    except IntegrityError:
        return False
    SpentChallenge.objects.filter(at__lt=now - timedelta(seconds=2 * CEREMONY_SECONDS)).delete()
    return True
