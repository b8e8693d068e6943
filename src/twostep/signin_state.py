"""Where the sign-in lives between requests: Django's session, for the pages and the API.

`WebSession` is the storage `services/signin.py` works on; it decides nothing. The helpers
below read the flow's answers for a request, so a view or an API route says
`signin_state.stage(request)` rather than building the storage itself.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login, logout, update_session_auth_hash

from .core import clock
from .http import origin
from .models import User
from .services import sessions, signin, trusted_browsers

HELD = "twostep_pending"
PROOF = "twostep_proof"
STASH = "twostep_stash"
RETURN = "twostep_oidc_return"  # an application's sign-in to go back to after a setup
RETURN_SECONDS = 15 * 60
SEEN_AT = "twostep_seen_at"  # clock.now() of the last request, to the minute (idle timeout)
STASH_SECONDS = 300  # a WebAuthn challenge is single use and expires in 5 minutes
BACKEND = "twostep.auth_backend.LoginBackend"


class WebSession:
    """The sign-in state in a request's Django session."""

    def __init__(self, request):
        self.request = request
        self.store = request.session

    def signed_in_user(self) -> User | None:
        user = getattr(self.request, "user", None)
        return user if user is not None and user.is_authenticated else None

    def held(self) -> dict | None:
        return self.store.get(HELD)

    def hold(self, state: dict) -> None:
        self.store.cycle_key()  # no fixation: the half-signed-in session gets a new key
        for key in (PROOF, STASH):
            self.store.pop(key, None)
        self.store[HELD] = state

    def drop_held(self) -> None:
        self.store.pop(HELD, None)

    def complete(self, user: User, proof: dict) -> None:
        self.store.pop(HELD, None)
        login(self.request, user, backend=BACKEND)  # a new session key (ASVS 7.2.4)
        self.store[PROOF] = proof
        self.store[SEEN_AT] = proof["auth_time"]
        sessions.start(user, self.store.session_key, origin(self.request))

    def end(self) -> None:
        sessions.forget(self.store.session_key)
        logout(self.request)

    def proof(self) -> dict:
        return self.store.get(PROOF) or {}

    def update_proof(self, **changes) -> None:
        self.store[PROOF] = {**self.proof(), **changes}

    def put(self, key: str, value) -> None:
        stash = self.store.get(STASH) or {}
        stash[key] = {"value": value, "at": clock.now()}
        self.store[STASH] = stash

    def take(self, key: str):
        """Return a stashed value once (it is gone after), or None when absent or expired."""
        stash = self.store.get(STASH) or {}
        item = stash.pop(key, None)
        self.store[STASH] = stash
        if item is None or clock.now() - item["at"] > STASH_SECONDS:
            return None
        return item["value"]


def of(request) -> WebSession:
    return WebSession(request)


def stage(request) -> str:
    return signin.stage(of(request))


def pending_user(request, stage: str) -> User | None:
    return signin.pending_user(of(request), stage)


def setup_user(request) -> User | None:
    return signin.setup_user(of(request))


def password_is_fresh(request) -> bool:
    return signin.password_is_fresh(of(request))


def proved(request) -> dict:
    """What this session proved: amr (RFC 8176), auth_time, method (signin.proved)."""
    return signin.proved(of(request))


def remember_return(request, url: str, app: str) -> None:
    """Keep where an application's sign-in goes on, for a person sent to set up a second factor."""
    request.session[RETURN] = {"url": url, "app": app, "at": clock.now()}


def pending_return(request) -> dict | None:
    """The application sign-in to go back to ({"url", "app"}), if one is waiting (15 minutes)."""
    kept = request.session.get(RETURN)
    if not isinstance(kept, dict) or clock.now() - kept.get("at", 0) > RETURN_SECONDS:
        return None
    return kept


def forget_return(request) -> None:
    request.session.pop(RETURN, None)


def after_recovery(request) -> bool:
    """Tell whether this session got in without an authenticator (offer a new one)."""
    return bool(signin.after_recovery(of(request)))


def signed_in_with_pass(request) -> bool:
    """Tell whether this session signed in with an admin's one-time pass (not a backup code)."""
    return signin.after_recovery(of(request)) == "recovery_pass"


def recovered(request) -> None:
    """Note that the person registered a new authenticator after a recovery sign-in."""
    session = of(request)
    if session.proof().get("recovery"):
        session.update_proof(recovery=None)


def stepped_up(request, code) -> None:
    """After an action that a second factor typed just now allowed, count this session as fresh."""
    if code:
        signin.stepped_up(of(request))


def sign_out(request) -> None:
    signin.sign_out(of(request), origin(request))


def keep_session(request, user: User) -> None:
    """Keep this session after a change that ended the user's other sessions."""
    old_key = request.session.session_key
    update_session_auth_hash(request, User.objects.get(pk=user.pk))
    sessions.rekey(old_key, request.session.session_key)


def keep_session_with_new_factor(request, user: User) -> None:
    """Keep this session after it registered an authenticator: the proof it gave counts as fresh."""
    keep_session(request, user)
    signin.stepped_up(of(request))


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
    proof = request.session.get(PROOF) or {}
    started = proof.get("auth_time")
    if started is None:  # a session from before proofs were kept: its time starts now
        started = now
        request.session[PROOF] = {**proof, "auth_time": now}
    seen = request.session.get(SEEN_AT, now)
    if now - started > settings.TWOSTEP_SESSION_MAX_SECONDS or now - seen > settings.SESSION_COOKIE_AGE:
        sessions.forget(request.session.session_key)
        logout(request)
    elif SEEN_AT not in request.session or now - seen >= sessions.TOUCH_SECONDS:
        request.session[SEEN_AT] = now
        sessions.touch(request.session.session_key)
