"""The signed-in user's sessions and remembered browsers: list them, end or forget them."""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Router, Schema

from .. import signin_state
from ..http import origin
from ..services import sessions, trusted_browsers
from ..services.errors import NotFound
from .errors import NotAuthenticated, SetupRequired
from .schemas import spec
from .security import SignedIn

router = Router(tags=["sessions"], auth=SignedIn())


class SessionRowOut(Schema):
    id: int
    browser: str = Field(description='A readable name from the user agent, e.g. "Chrome on Android".')
    ip: str | None
    created_at: datetime = Field(description="When the sign-in happened.")
    last_seen_at: datetime = Field(description="The last request, to the minute.")
    current: bool = Field(description="True for the session making this request.")


class SessionsOut(Schema):
    sessions: list[SessionRowOut]


class EndedOut(Schema):
    ended: int = Field(description="How many sessions were signed out.")
    signed_out: bool = Field(False, description="True when the session ended was this one.")


class BrowserOut(Schema):
    id: int
    browser: str
    ip: str | None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


class BrowsersOut(Schema):
    browsers: list[BrowserOut]


class ForgottenOut(Schema):
    forgotten: int


@router.get("/sessions", **spec(SessionsOut, NotAuthenticated, SetupRequired))
def list_sessions(request):
    """List the user's live sessions, most recently used first; `current` marks this one."""
    rows = sessions.active_sessions(request.auth, request.session.session_key)
    return {"sessions": [
        {"id": s.id, "browser": s.browser, "ip": s.ip, "created_at": s.created_at,
         "last_seen_at": s.last_seen_at, "current": s.is_current}
        for s in rows
    ]}


@router.post("/sessions/end-others", **spec(EndedOut, NotAuthenticated, SetupRequired, unsafe=True))
def end_other_sessions(request):
    """Sign out every other session of the user; this one stays signed in."""
    count = sessions.end_other_sessions(request.auth, origin(request), request.session.session_key)
    return {"ended": count, "signed_out": False}


@router.delete("/sessions/{id}", **spec(EndedOut, NotAuthenticated, SetupRequired, NotFound, unsafe=True))
def end_session(request, id: str):
    """Sign out one session. Another user's session, or an unknown id, is 404 `not_found`.

    Ending this very session signs it out (`signed_out`: true), like POST /auth/logout.
    """
    current = sessions.end_session(request.auth, id, origin(request), request.session.session_key)
    if current:
        signin_state.sign_out(request)
    return {"ended": 1, "signed_out": current}


@router.get("/trusted-browsers", **spec(BrowsersOut, NotAuthenticated, SetupRequired))
def list_browsers(request):
    """List the browsers that skip the second step for this user until they expire."""
    return {"browsers": [
        {"id": b.pk, "browser": sessions.browser_name(b.user_agent), "ip": b.ip,
         "created_at": b.created_at, "expires_at": b.expires_at, "last_used_at": b.last_used_at}
        for b in trusted_browsers.browsers(request.auth)
    ]}


@router.delete("/trusted-browsers/{id}",
               **spec(ForgottenOut, NotAuthenticated, SetupRequired, NotFound, unsafe=True))
def forget_browser(request, id: str):
    """Forget one remembered browser: it asks for a code again. Another user's is 404."""
    trusted_browsers.forget(request.auth, id, origin(request))
    return {"forgotten": 1}


@router.delete("/trusted-browsers", **spec(ForgottenOut, NotAuthenticated, SetupRequired, unsafe=True))
def forget_browsers(request):
    """Forget every remembered browser of the user."""
    return {"forgotten": trusted_browsers.forget_all(request.auth, origin(request))}
