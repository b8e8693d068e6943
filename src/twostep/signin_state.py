"""The sign-in's state in the session, shared by the web pages and the API.

Between the password and the second factor the session holds only the user's id, the stage,
the time and the user's security stamp — never the password (CVE-2020-15105) — and the user is
not signed in: nothing but the second step (or the forced setup) can use that state.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import login, logout, update_session_auth_hash

from .core import clock
from .http import origin
from .models import User
from .services import enrollment, sessions, trusted_browsers, verification
from .services.verification import AUTHENTICATED, SECOND_FACTOR, SETUP_REQUIRED

PENDING = "twostep_pending"
PASSWORD_AT = "twostep_password_at"
RECOVERY = "twostep_recovery"
SIGNED_IN_AT = "twostep_signed_in_at"  # clock.now() at the full sign-in (absolute timeout)
SEEN_AT = "twostep_seen_at"  # clock.now() of the last request, to the minute (idle timeout)
SETUP_MINUTES = 15  # time to find the phone and scan a code when setup is forced
BACKEND = "twostep.auth_backend.LoginBackend"


def begin(request, user: User, stage: str) -> None:
    """Hold a half-signed-in user after a right password (new session key: no fixation)."""
    request.session.cycle_key()
    request.session.pop(RECOVERY, None)
    request.session[PENDING] = {
        "uid": user.pk, "stage": stage, "at": time.time(), "stamp": user.security_stamp,
    }
    request.session[PASSWORD_AT] = time.time()


def pending_user(request, stage: str) -> User | None:
    """Return the half-signed-in user at `stage`, or None if there is none or it expired."""
    state = request.session.get(PENDING)
    if not state or state.get("stage") != stage:
        return None
    minutes = SETUP_MINUTES if stage == SETUP_REQUIRED else settings.TWOSTEP_PENDING_MINUTES
    if time.time() - state.get("at", 0) > minutes * 60:
        request.session.pop(PENDING, None)
        return None
    user = User.objects.select_related("account").filter(pk=state.get("uid"), is_active=True).first()
    if user is None or user.security_stamp != state.get("stamp"):
        request.session.pop(PENDING, None)
        return None
    return user


def finish(request, user: User, *, recovery: bool = False) -> None:
    """Sign the user in fully: the session key changes (ASVS 7.2.4)."""
    request.session.pop(PENDING, None)
    user = User.objects.get(pk=user.pk)
    login(request, user, backend=BACKEND)
    request.session[PASSWORD_AT] = time.time()
    request.session[SIGNED_IN_AT] = request.session[SEEN_AT] = clock.now()
    sessions.start(user, request.session.session_key, origin(request))
    if recovery:
        # How the user got in without the authenticator: "backup_code" or "recovery_pass".
        request.session[RECOVERY] = recovery if isinstance(recovery, str) else "backup_code"


def finish_after_setup(request, user: User) -> None:
    """Sign in a user whose forced setup just confirmed their first authenticator."""
    verification.record_sign_in(user, origin(request), method="totp_setup")
    finish(request, user)


def sign_out(request) -> None:
    """End the sign-in (or abandon a half-done one): the session is emptied, its key changes."""
    if request.user.is_authenticated:
        verification.record_sign_out(request.user, origin(request))
    sessions.forget(request.session.session_key)
    logout(request)


def keep_session(request, user: User) -> None:
    """Keep this session after a change that ended the user's other sessions."""
    old_key = request.session.session_key
    update_session_auth_hash(request, User.objects.get(pk=user.pk))
    sessions.rekey(old_key, request.session.session_key)


def password_is_fresh(request) -> bool:
    """Tell whether this session proved the password within the last few minutes."""
    return time.time() - request.session.get(PASSWORD_AT, 0) < settings.TWOSTEP_REAUTH_MINUTES * 60


def after_recovery(request) -> bool:
    """Tell whether this session signed in with a backup code (offer a new authenticator)."""
    return bool(request.session.get(RECOVERY))


def signed_in_with_pass(request) -> bool:
    """Tell whether this session signed in with an admin's one-time pass (not a backup code)."""
    return request.session.get(RECOVERY) == "recovery_pass"


def stage(request) -> str:
    """Return anonymous, second_factor, setup_required or authenticated for this session."""
    user = request.user
    if user.is_authenticated:
        if enrollment.is_required(user) and not enrollment.is_enabled(user):
            return SETUP_REQUIRED
        return AUTHENTICATED
    for candidate in (SECOND_FACTOR, SETUP_REQUIRED):
        if pending_user(request, candidate) is not None:
            return candidate
    return "anonymous"


def setup_user(request) -> User | None:
    """Return who may set up an authenticator now: the signed-in user or a forced-setup one."""
    if request.user.is_authenticated:
        return request.user
    return pending_user(request, SETUP_REQUIRED)


def remember_browser(request, response) -> bool:
    """Set the remembered-browser cookie for the user who just passed both factors.

    Only a fully signed-in session gets one: a cookie set before the second step would let the
    password alone through next time (scheb/two-factor-bundle #253).
    """
    if not request.user.is_authenticated:
        return False
    remembered = trusted_browsers.remember(request.user, origin(request))
    if remembered is None:
        return False
    response.set_cookie(
        trusted_browsers.COOKIE_NAME, remembered.token, max_age=remembered.max_age,
        secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax",
    )
    return True


def remembered_token(request) -> str | None:
    """Return this browser's remembered-browser token, if it sent one."""
    return request.COOKIES.get(trusted_browsers.COOKIE_NAME) or None


def end_if_expired(request) -> None:
    """Sign out a session past its idle or absolute limit; note its use once a minute.

    Both limits run on the server's clock and the session's own data, whatever the cookie says.
    """
    if not request.user.is_authenticated:
        return
    now = clock.now()
    started = request.session.setdefault(SIGNED_IN_AT, now)
    seen = request.session.get(SEEN_AT, now)
    if now - started > settings.TWOSTEP_SESSION_MAX_SECONDS or now - seen > settings.SESSION_COOKIE_AGE:
        sessions.forget(request.session.session_key)
        logout(request)
    elif SEEN_AT not in request.session or now - seen >= sessions.TOUCH_SECONDS:
        request.session[SEEN_AT] = now
        sessions.touch(request.session.session_key)
