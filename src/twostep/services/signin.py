"""The one sign-in flow, for the pages, the API and OpenID Connect alike.

    anonymous ──password──▶ authenticated                  (no second factor, not required)
              ──password──▶ second_factor ──any method──▶ authenticated
              ──password──▶ setup_required ──first authenticator──▶ authenticated
              ──passkey (where the account allows it)──▶ authenticated

Transports carry input and output only; every decision is here: which methods the second
step offers, that a backup code or an admin's pass leads to a new authenticator, that a new
sign-in ends the one the session had, and what the session proved (`amr`, when). Between the
steps the session holds the user's id, the stage, the time and the security stamp — never the
password (CVE-2020-15105) — and the user is not signed in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.contrib.auth import authenticate
from django.utils.translation import gettext_lazy as _

from ..core import backup_codes as codes_core
from ..core import clock
from ..models import User
from . import accounts, admission, attempts, audit, devices, reauth, throttling, trusted_browsers
from .audit import Origin, Type
from .errors import InvalidCode, InvalidCredentials, NoPendingSignIn, PasskeysNotAllowed, ServiceError
from .factors import Verified, confirmed_kinds, enabled, methods, slice_for
from .factors import webauthn as webauthn_factor

log = logging.getLogger("twostep.signin")

ANONYMOUS = "anonymous"
SECOND_FACTOR = "second_factor"
SETUP_REQUIRED = "setup_required"
AUTHENTICATED = "authenticated"
SETUP_MINUTES = 15  # time to find the phone and scan a code when setup is forced


class Session(Protocol):
    """Where a sign-in lives between requests (signin_state.WebSession keeps it in Django's)."""

    def signed_in_user(self) -> User | None: ...
    def held(self) -> dict | None: ...
    def hold(self, state: dict) -> None: ...  # a new session key; any earlier sign-in ends
    def drop_held(self) -> None: ...
    def complete(self, user: User, proof: dict) -> None: ...  # full sign-in: a new key (ASVS 7.2.4)
    def end(self) -> None: ...
    def proof(self) -> dict: ...
    def update_proof(self, **changes) -> None: ...
    def put(self, key: str, value) -> None: ...
    def take(self, key: str): ...
    def with_saved(self, write) -> None: ...  # write(key) in the transaction that saves the new key
    def save(self) -> None: ...  # write the session now, in the caller's transaction


@dataclass(frozen=True)
class Outcome:
    stage: str
    user: User | None = None
    methods: tuple[str, ...] = ()
    method: str | None = None
    # How a sign-in got past the second step without an authenticator: "backup_code" or
    # "recovery_pass". The person is offered (after a pass: led to) a new authenticator.
    recovery: str | None = None
    backup_codes_remaining: int | None = None


# Reading the session -----------------------------------------------------------------------

def _held_state(session: Session, stage: str) -> dict | None:
    """Return the session's held state at `stage` unless it expired (the session alone is read)."""
    state = session.held()
    if not state or state.get("stage") != stage:
        return None
    minutes = SETUP_MINUTES if stage == SETUP_REQUIRED else settings.TWOSTEP_PENDING_MINUTES
    if clock.now() - state.get("at", 0) > minutes * 60:
        session.drop_held()
        return None
    return state


def pending_user(session: Session, stage: str) -> User | None:
    """Return the half-signed-in user at `stage`, or None if there is none or it expired."""
    state = _held_state(session, stage)
    if state is None:
        return None
    user = User.objects.with_account(state.get("uid"))
    if user is None or not user.is_active or user.security_stamp != state.get("stamp"):
        session.drop_held()
        return None
    return user


def stage(session: Session) -> str:
    """Return anonymous, second_factor, setup_required or authenticated for this session."""
    user = session.signed_in_user()
    if user is not None:
        # The account may have started requiring 2FA after this sign-in.
        if accounts.two_factor_required(user.account) and not enabled(user):
            return SETUP_REQUIRED
        return AUTHENTICATED
    for candidate in (SECOND_FACTOR, SETUP_REQUIRED):
        if pending_user(session, candidate) is not None:
            return candidate
    return ANONYMOUS


def setup_required(session: Session) -> bool:
    """Tell whether stage(session) is SETUP_REQUIRED, reading no more than that answer needs.

    A session held at the second step is not (a held state has one stage), which the session
    alone says; stage() would read the held user first.
    """
    user = session.signed_in_user()
    if user is not None:
        return accounts.two_factor_required(user.account) and not enabled(user)
    return pending_user(session, SETUP_REQUIRED) is not None


def setup_user(session: Session) -> User | None:
    """Return who may set up an authenticator now: the signed-in user or a forced-setup one."""
    return session.signed_in_user() or pending_user(session, SETUP_REQUIRED)


def proved(session: Session) -> dict:
    """Return what this session proved: amr (RFC 8176), auth_time, method, recovery."""
    return session.proof()


# A password confirmed on purpose ("confirm it is you" on the security page) counts at least this
# long, so the change it was asked for goes through even where every change asks again.
CONFIRMED_SECONDS = 5 * 60


def password_is_fresh(session: Session) -> bool:
    """Tell whether this session proved the password within the last few minutes."""
    proof = session.proof()
    at = proof.get("password_at") or (session.held() or {}).get("at", 0)
    window = settings.TWOSTEP_REAUTH_MINUTES * 60
    confirmed = proof.get("password_confirmed_at") or 0
    return clock.now() - at < window or clock.now() - confirmed < max(window, CONFIRMED_SECONDS)


def confirm_password(session: Session, password: str, origin: Origin) -> None:
    """Prove the signed-in person's password once, so the changes after it do not ask again.

    Raises WrongPassword (throttled like the sign-in form) unless it is the user's password.
    """
    user = session.signed_in_user()
    if user is None:
        raise NoPendingSignIn()
    reauth.confirm_password(user, password, origin)
    now = clock.now()
    session.update_proof(password_at=now, password_confirmed_at=now)


def second_factor_is_fresh(session: Session) -> bool:
    """Tell whether this session proved a second factor within the last few minutes."""
    at = session.proof().get("second_factor_at") or 0
    return clock.now() - at < settings.TWOSTEP_REAUTH_MINUTES * 60


def stepped_up(session: Session) -> None:
    """Note that the signed-in person proved a second factor again just now (an admin's step-up)."""
    if session.signed_in_user() is not None:
        session.update_proof(second_factor_at=clock.now())


def new_authenticator_terms(session: Session, *, replace_apps: bool | None = None) -> dict:
    """Say what a new authenticator registered in this session brings (the lost-phone rule).

    After a sign-in without an authenticator (a backup code, an admin's pass) it comes with a
    fresh set of backup codes, and on the guided lost-phone path a new app replaces the old
    apps (keys stay). `replace_apps` overrides the second for a route with its own meaning (v1:
    always replace; adding beside the others: never).
    """
    recovered = bool(after_recovery(session))
    return {"new_codes": recovered, "replace_apps": recovered if replace_apps is None else replace_apps}


def after_recovery(session: Session) -> str | None:
    """Return "backup_code" or "recovery_pass" if the session got in without an authenticator."""
    return session.proof().get("recovery")


# The steps ---------------------------------------------------------------------------------

def _find_user(login: str) -> User | None:
    return User.objects.select_related("account").filter(login__caseless=login.strip()).first()


@dataclass(frozen=True)
class PasswordStep:
    user: User
    stage: str  # AUTHENTICATED, SECOND_FACTOR or SETUP_REQUIRED
    attempt: throttling.PasswordAttempt  # admitted by the throttle (settled unless settle=False)
    remembered: bool = False  # a remembered browser skips the second step
    kinds: frozenset[str] = frozenset()  # of the user's confirmed authenticators (as just read)


def password(session: Session, login: str, password: str, origin: Origin, *,
             remembered_token: str | None = None, device_cookie: str | None = None) -> Outcome:
    """Check login and password; sign in, or hold the user for the second step or the setup.

    A right password ends whatever sign-in the session had before (one rule for every transport).
    Its throttle attempt is settled in the transaction that saves the session's new key: one
    write fewer, and should the session not be saved (the request failed) the attempt stays
    counted as a failure, as any attempt that never reports.
    """
    step = check_password(login, password, origin, remembered_token=remembered_token,
                          device_cookie=device_cookie, settle=False)
    user = step.user
    _end_previous(session, origin)
    if step.stage == AUTHENTICATED:
        outcome = _complete(session, user, origin, "remembered_browser" if step.remembered else "password",
                            ("pwd",))
    else:
        session.hold(_held(user, step.stage))
        offered = methods(user, clock.utcnow(), step.kinds) if step.stage == SECOND_FACTOR else ()
        outcome = Outcome(step.stage, user, methods=tuple(offered))
    session.with_saved(lambda _key: throttling.record_password_success(step.attempt))
    return outcome


def check_password(login: str, password: str, origin: Origin, *,
                   remembered_token: str | None = None, device_cookie: str | None = None,
                   settle: bool = True) -> PasswordStep:
    """Check login and password and say what the sign-in needs next; nothing is signed in.

    With `settle=False` a right password's throttle attempt is left for the caller to settle
    (`throttling.record_password_success(step.attempt)`); unsettled, it counts as a failure.

    A throttled attempt is refused before any password hash is computed. Failures count per
    (login, address) and per address, so a stranger elsewhere never locks the real user out.
    The hash waits for a slot of the hashing gate (admission control, below); a browser with a
    device cookie for this login waits in the priority lane and counts against its own key.
    """
    now = clock.utcnow()
    # Admission control: begin (services/admission.py, services/devices.py) -----------------
    device = devices.recognise(device_cookie, login)
    member = device is not None
    admission.refusal(priority=member)  # a full lane refuses before any database work
    keys = throttling.password_keys(login, origin.ip, device.id if member else None)
    # Admission control: end ------------------------------------------------------------------
    try:
        attempt = throttling.reserve_password_attempt(keys, now)
    except ServiceError:
        audit.record(Type.THROTTLED, user=_find_user(login), origin=origin, step="password")
        raise
    try:  # admission control: the hash (and a re-hash with new parameters) holds a slot
        with admission.hashing(priority=member):
            user = authenticate(None, login=login.strip(), password=password)
    except admission.Busy:
        throttling.release_password_attempt(attempt)  # nothing was checked: nothing counts
        raise
    if user is None:
        throttling.record_password_failure(attempt)
        audit.record(Type.SIGN_IN_FAILED, user=_find_user(login), origin=origin)
        raise InvalidCredentials()
    if settle:
        throttling.record_password_success(attempt)
    kinds = confirmed_kinds(user)
    if kinds:  # two-factor authentication is on (factors.enabled, read once with the kinds)
        # A remembered browser skips only the second step, never the password (NIST §5.1);
        # a locked second factor is not skipped either.
        if (remembered_token and not throttling.second_factor_locked(user)
                and trusted_browsers.recognise(user, remembered_token)):
            return PasswordStep(user, AUTHENTICATED, attempt, remembered=True, kinds=kinds)
        return PasswordStep(user, SECOND_FACTOR, attempt, kinds=kinds)
    if accounts.two_factor_required(user.account):
        return PasswordStep(user, SETUP_REQUIRED, attempt)
    return PasswordStep(user, AUTHENTICATED, attempt)


def second_factor(session: Session, method: str, proof, origin: Origin) -> Outcome:
    """Finish a held sign-in with one of the user's methods; each proof is accepted once.

    The held user is read once, locked, by the attempt, which also checks what pending_user
    would (active, the same security stamp). The signed-in session is written in the attempt's
    transaction: a code is spent if and only if the sign-in it paid for exists.
    """
    state = _held_state(session, SECOND_FACTOR)
    if state is None or not state.get("stamp"):
        raise NoPendingSignIn()
    if method == "totp" and isinstance(proof, str) and codes_core.looks_like_backup_code(proof):
        method = "backup_code"  # a backup code typed in the app-code field is taken as one
    piece = slice_for(method)
    if method == "webauthn":
        proof = {"credential": proof, "challenge": session.take(WEBAUTHN_CHALLENGE)}
    outcome = None

    def complete(verified: Verified) -> None:  # in the attempt's transaction
        nonlocal outcome
        outcome = _complete(session, verified.user, origin, method, ("pwd", *verified.amr, "mfa"),
                            verified=verified)
        session.save()

    try:
        attempts.spend(state.get("uid"), piece, proof, origin, purpose="sign_in", stamp=state.get("stamp"),
                       then=complete)
    except NoPendingSignIn:
        session.drop_held()
        raise
    return outcome


def webauthn_options(session: Session, rp: webauthn_factor.RelyingParty, *, passkey: bool) -> dict:
    """Return the options for navigator.credentials.get(); the session keeps the challenge.

    For the second step: the held user's keys. For a passkey sign-in (`passkey`): any
    discoverable credential — who it belongs to is known only from the answer, so whether the
    account allows passkeys is decided then.
    """
    if passkey:
        options, ceremony = webauthn_factor.authentication_options(None, rp)
        session.put(PASSKEY_CHALLENGE, ceremony.to_json())
        return options
    user = pending_user(session, SECOND_FACTOR)
    if user is None:
        raise NoPendingSignIn()
    options, ceremony = webauthn_factor.authentication_options(user, rp)
    session.put(WEBAUTHN_CHALLENGE, ceremony.to_json())
    return options


def passkey(session: Session, credential, origin: Origin) -> Outcome:
    """Sign in with a passkey alone: a discoverable credential that verified the person.

    It counts as two factors (something held, and the PIN or biometric that unlocked it), where
    the account allows it. An unknown credential counts against the address like a wrong
    password; a wrong answer by a known key counts against its user like a wrong second step.
    """
    ceremony = session.take(PASSKEY_CHALLENGE)
    now = clock.utcnow()
    address = (throttling.password_keys("", origin.ip)[1],)
    attempt = throttling.reserve_password_attempt(address, now)
    if ceremony is None:
        throttling.record_password_success(attempt)  # nothing was tried: give the attempt back
        raise InvalidCode(_PASSKEY_EXPIRED)
    found = webauthn_factor.credential_owner(credential)
    if found is None or not found[0].user.is_active:
        throttling.record_password_failure(attempt)
        audit.record(Type.SIGN_IN_FAILED, origin=origin, method="passkey")
        raise InvalidCode(_PASSKEY_REFUSED)
    throttling.record_password_success(attempt)  # a known key: its user's throttle takes over
    user = found[0].user
    proof = {"credential": credential, "challenge": ceremony}
    try:
        verified = attempts.spend(user.pk, webauthn_factor, proof, origin, purpose="passkey")
    except InvalidCode as refused:
        if refused.message is InvalidCode.default_message:  # "that code is not right" reads oddly here
            raise InvalidCode(_PASSKEY_REFUSED) from None
        raise
    if not user.account.allow_passkeys:
        audit.record(Type.SIGN_IN_FAILED, user=user, origin=origin, method="passkey", reason="not_allowed")
        raise PasskeysNotAllowed()
    if "user" not in verified.amr:  # the ceremony required it; never sign in on presence alone
        raise InvalidCode(_PASSKEY_REFUSED)
    _end_previous(session, origin)
    attempts.record_sign_in(user, origin, method="passkey")
    return _complete(session, user, origin, webauthn_factor.METHOD, (*verified.amr, "mfa"), verified=verified)


def setup_done(session: Session, user: User, origin: Origin, authenticator=None) -> Outcome:
    """Sign in a held user whose forced setup just confirmed their first authenticator.

    An app by default; a security key or passkey registered instead (`authenticator`) is what
    the sign-in proved with the password (RFC 8176: hwk, or swk for a key that may be copied).
    """
    if session.signed_in_user() is not None:
        return Outcome(AUTHENTICATED, user)
    if authenticator is not None and authenticator.kind == webauthn_factor.KIND:
        amr = ("pwd", *webauthn_factor.amr_of(authenticator, user_verified=False), "mfa")
        return _complete(session, user, origin, "webauthn_setup", amr)
    return _complete(session, user, origin, "totp_setup", ("pwd", "otp", "mfa"))


def sign_out(session: Session, origin: Origin) -> None:
    """End the sign-in (or abandon a half-done one): the session is emptied, its key changes."""
    user = session.signed_in_user()
    if user is not None:
        audit.record(Type.SIGN_OUT, user=user, actor=user, origin=origin)
    session.end()


def _end_previous(session: Session, origin: Origin) -> None:
    """A new sign-in in this session ends the one it had (audited as a sign-out)."""
    if session.signed_in_user() is not None:
        sign_out(session, origin)


def _held(user: User, stage: str) -> dict:
    return {"uid": user.pk, "stage": stage, "at": clock.now(), "stamp": user.security_stamp}


def _complete(session: Session, user: User, origin: Origin, method: str, amr, *,
              verified: Verified | None = None) -> Outcome:
    if verified is None:  # a second factor was recorded with its attempt
        attempts.record_sign_in(user, origin, method=method)
    now = clock.now()
    recovery = verified.method if verified is not None and verified.recovery else None
    amr = list(dict.fromkeys(amr))
    proof = {"amr": amr, "auth_time": now, "method": method, "recovery": recovery,
             "password_at": now if "pwd" in amr else None,
             "second_factor_at": now if "mfa" in amr else None}
    # The row as the attempt just read it under its lock, else as it is now: the session's hash
    # is made from the current password and security stamp.
    fresh = verified.user if verified is not None and verified.user is not None else None
    session.complete(fresh or User.objects.select_related("account").get(pk=user.pk), proof)
    left = verified.backup_codes_remaining if verified is not None else None
    return Outcome(AUTHENTICATED, user, method=method, recovery=recovery, backup_codes_remaining=left)


# Proofs checked outside a sign-in (a change, an admin's step-up), under the same throttle ------

WEBAUTHN_CHALLENGE = "webauthn_challenge"
PASSKEY_CHALLENGE = "webauthn_passkey_challenge"
_PASSKEY_REFUSED = _("That passkey was not accepted. Try again, or sign in with your login and password.")
_PASSKEY_EXPIRED = _("The request to your passkey expired. Try again.")


def check_code(user_id: int, code, origin: Origin, *, method: str = "auto",
               purpose: str = "sign_in") -> Verified:
    """Check a typed code (app or backup, told apart by its shape) and spend it."""
    if not isinstance(code, str):
        raise InvalidCode()
    if method == "auto" or (method == "totp" and codes_core.looks_like_backup_code(code)):
        method = "backup_code" if codes_core.looks_like_backup_code(code) else "totp"
    return attempts.spend(user_id, slice_for(method), code, origin, purpose=purpose)


