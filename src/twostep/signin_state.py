"""Where the sign-in lives between requests: Django's session, for the pages and the API.

`WebSession` is the storage `services/signin.py` works on; it decides nothing. The helpers
below read the flow's answers for a request, so a view or an API route says
`signin_state.stage(request)` rather than building the storage itself.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted

from .core import clock
from .http import origin
from .models import User
from .services import devices, sessions, signin, trusted_browsers

HELD = "twostep_pending"
PROOF = "twostep_proof"
STASH = "twostep_stash"
RETURN = "twostep_oidc_return"  # an application's sign-in to go back to after a setup
RETURN_SECONDS = 15 * 60
FORM_TARGETS = "twostep_form_targets"  # {origin: clock.now()}: where this sign-in's forms may end
SEEN_AT = "twostep_seen_at"  # clock.now() of the last request, to the minute (idle timeout)
SIGNED_IN_AS = "_twostep_signed_in_as"  # request attribute: the login of a full sign-in just now
STASH_SECONDS = 300  # a WebAuthn challenge is single use and expires in 5 minutes
BACKEND = "twostep.auth_backend.LoginBackend"
_HOST = re.compile(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+")  # a DNS name, IPv4 or IPv6: nothing a CSP could read as more


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
        self.with_saved(functools.partial(sessions.start, user, origin=origin(self.request)))
        setattr(self.request, SIGNED_IN_AS, user.login)  # the response carries a device cookie

    def with_saved(self, write) -> None:
        """Call `write(session_key)` with the session's new key: in the transaction that saves it.

        twostep's session store writes it with the key's row (`write_with`); another store
        (a cache) has no such transaction, and the write happens at once.
        """
        write_with = getattr(self.store, "write_with", None)
        if write_with is not None:
            write_with(write)
        else:
            write(self.store.session_key)

    def save(self) -> None:
        """Write the session now (in the caller's transaction); the response's save then writes
        only what changed after (twostep's store; another store writes it again)."""
        try:
            self.store.save()
        except UpdateError:  # as the session middleware answers it: 400, nothing written
            raise SessionInterrupted("The request's session was deleted before the request completed.") from None

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


def setup_required(request) -> bool:
    """Tell whether stage(request) is SETUP_REQUIRED (reading no more than that needs)."""
    return signin.setup_required(of(request))


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


def form_target(url: str) -> str | None:
    """The origin of `url` as a CSP source (scheme://host[:port]), or None if it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not _HOST.fullmatch(host):
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def allow_form_target(request, url: str) -> None:
    """Let this session's pages end a form post at `url`'s origin, an application's registered
    (and validated) redirect URI: Chromium holds every redirect after a form post to the posting
    page's `form-action`, and a sign-in for an application ends with one (…/login/code →
    /oauth/authorize → the application). Kept as long as the way back (15 minutes)."""
    target = form_target(url)
    if target is None:
        return
    now = clock.now()
    kept = request.session.get(FORM_TARGETS)
    kept = {o: at for o, at in kept.items() if now - at <= RETURN_SECONDS} if isinstance(kept, dict) else {}
    kept[target] = now
    request.session[FORM_TARGETS] = kept


def form_targets(request) -> list[str]:
    """The origins this session's pages may post forms to besides their own (allow_form_target)."""
    session = getattr(request, "session", None)
    if session is None:
        return []
    kept = session.get(FORM_TARGETS)
    if not isinstance(kept, dict):
        return []
    now = clock.now()
    return sorted(o for o, at in kept.items() if isinstance(at, (int, float)) and now - at <= RETURN_SECONDS
                  and form_target(o) == o)


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
    """Return this browser's remembered-browser token, if it sent one.

    None when the sign-in was asked for a second factor now (`mfa=1`: an application's
    acr_values=urn:twostep:mfa): a remembered browser does not skip the second step then.
    """
    if (request.POST.get("mfa") or request.GET.get("mfa")) == "1":
        return None
    return request.COOKIES.get(trusted_browsers.COOKIE_NAME) or None


def device_cookie(request) -> str | None:
    """Return this browser's device cookie (services/devices.py), if it sent one."""
    return request.COOKIES.get(devices.COOKIE_NAME) or None


def set_device_cookie(request, response) -> None:
    """After a full sign-in in this request, give the browser its device cookie for that login.

    HttpOnly, SameSite=Lax, Secure over HTTPS (or with TWOSTEP_SECURE_COOKIES); set on a
    successful answer only, never after a failure or at the password step of a two-step sign-in.
    """
    login = getattr(request, SIGNED_IN_AS, None)
    if not login or response.status_code >= 400:
        return
    response.set_cookie(
        devices.COOKIE_NAME, devices.issue(device_cookie(request), login), max_age=devices.max_age(),
        secure=settings.SESSION_COOKIE_SECURE or request.is_secure(), httponly=True, samesite="Lax",
    )


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


LOGIN_HINT = "twostep_login_hint"


def held_login(request):
    """Return a function giving the login of the half-done sign-in this session holds now
    (expired or not), else "".

    The session is read now, before pending_user forgets an expired sign-in; the user's row
    only if the function is called (a page that shows the held user has the login already).
    """
    uid = (of(request).held() or {}).get("uid")

    def login() -> str:
        if not isinstance(uid, int):
            return ""
        return User.objects.filter(pk=uid, is_active=True).values_list("login", flat=True).first() or ""

    return login


def keep_login_hint(request, login: str) -> None:
    """Keep the login of an expired half sign-in for the sign-in page to fill in once."""
    if login:
        request.session[LOGIN_HINT] = login


def take_login_hint(request) -> str:
    hint = request.session.pop(LOGIN_HINT, "")
    return hint if isinstance(hint, str) else ""


def confirm_password(request, password: str) -> None:
    """Prove the password once for the changes that follow (see signin.confirm_password)."""
    signin.confirm_password(of(request), password, origin(request))
