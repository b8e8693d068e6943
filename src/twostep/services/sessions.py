"""Signed-in sessions: note each one, list the live ones, end one or all the others.

Django keeps the session data; a UserSession row names a session so its owner can see and end
it. A session dies without this module's help when the password or the security stamp changes
(both are in Django's session hash) or when it expires; such rows are pruned when the list is
read, so a dead session is never shown as active.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.db import transaction
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _

from ..core import clock
from ..models import User, UserSession
from ..prepared import PreparedInsert
from . import audit, oidc
from .audit import Origin, Type
from .errors import NotFound
from .user_agents import browser_name  # noqa: F401 — the pages and the API name browsers through here too

# last_seen_at is written at most this often per session (the middleware keeps the exact time).
TOUCH_SECONDS = 60


@dataclass(frozen=True)
class ActiveSession:
    id: int
    browser: str
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    is_current: bool


def _store():
    return import_module(settings.SESSION_ENGINE).SessionStore


_INSERT_SESSION = PreparedInsert(UserSession)  # at every full sign-in


def start(user: User, session_key: str | None, origin: Origin) -> None:
    """Note a session that just completed a full sign-in (its key is new: a sign-in changes it)."""
    if not session_key:
        return
    now = clock.utcnow()
    _INSERT_SESSION.create(session_key=session_key, user=user, created_at=now, last_seen_at=now,
                               ip=origin.ip, user_agent=(origin.user_agent or "")[:300])


def rekey(old_key: str | None, new_key: str | None) -> None:
    """Follow a session whose key changed (kept after a password or 2FA change)."""
    if old_key and new_key and old_key != new_key:
        UserSession.objects.filter(session_key=old_key).update(session_key=new_key)


def touch(session_key: str | None) -> None:
    """Note that a session was used now (the caller limits this to once a minute)."""
    if session_key:
        UserSession.objects.filter(session_key=session_key).update(last_seen_at=clock.utcnow())


def forget(session_key: str | None) -> None:
    """Drop the record of a session that is ending (sign-out, timeout)."""
    if session_key:
        UserSession.objects.filter(session_key=session_key).delete()


def _is_alive(row: UserSession, user: User, now: datetime, current_key: str | None = None) -> bool:
    """Tell whether the Django session behind a row still signs this user in.

    The caller's own session (`current_key`) signed this request in, so it is alive; its row may
    not be written yet when its key changed during the request (twostep/session_store.py).
    """
    if current_key is not None and row.session_key == current_key:
        return True
    if row.created_at <= now - timedelta(seconds=settings.TWOSTEP_SESSION_MAX_SECONDS):
        return False
    # The middleware ends a session idle past the limit; last_seen_at lags by up to a minute.
    idle = timedelta(seconds=settings.SESSION_COOKIE_AGE + TOUCH_SECONDS)
    if row.last_seen_at <= now - idle:
        return False
    data = _store()(session_key=row.session_key).load()
    if str(data.get(SESSION_KEY)) != str(user.pk):
        return False
    # A password or 2FA change rotates the hash: Django refuses the session on its next request.
    held = data.get(HASH_SESSION_KEY) or ""
    return any(constant_time_compare(held, known)
               for known in (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()))


def _end(session_key: str) -> None:
    _store()(session_key=session_key).delete()
    UserSession.objects.filter(session_key=session_key).delete()


def active_sessions(user: User, current_key: str | None) -> list[ActiveSession]:
    """Return the user's live sessions, most recently used first; prune the dead ones."""
    user = User.objects.get(pk=user.pk)  # the current password and stamp
    now = clock.utcnow()
    live = []
    for row in UserSession.objects.filter(user=user).order_by("-last_seen_at", "-pk"):
        if _is_alive(row, user, now, current_key):
            live.append(ActiveSession(
                id=row.pk, browser=browser_name(row.user_agent), ip=row.ip, created_at=row.created_at,
                last_seen_at=row.last_seen_at, is_current=row.session_key == current_key,
            ))
        else:
            _end(row.session_key)
    return live


def _session_id(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotFound(_("No such session.")) from None


def end_session(user: User, session_id, origin: Origin, current_key: str | None) -> bool:
    """Sign out one of the user's sessions; another user's is "not found" (ASVS 8.2.2).

    Return True when it is the caller's own session, which the caller then signs out itself.
    """
    row = UserSession.objects.filter(pk=_session_id(session_id), user=user).first()
    if row is None or not _is_alive(row, User.objects.get(pk=user.pk), clock.utcnow()):
        if row is not None:
            _end(row.session_key)
        raise NotFound(_("No such session."))
    if row.session_key == current_key:
        return True
    with transaction.atomic():
        _end(row.session_key)
        audit.record(Type.SESSION_ENDED, user=user, actor=user, origin=origin,
                     browser=browser_name(row.user_agent), session_ip=row.ip)
    return False


def end_other_sessions(user: User, origin: Origin, current_key: str | None) -> int:
    """Sign out every session of the user but the caller's; return how many ended."""
    with transaction.atomic():
        keys = list(UserSession.objects.filter(user=user).exclude(session_key=current_key or "")
                    .values_list("session_key", flat=True))
        for key in keys:
            _end(key)
        oidc.revoke_user_tokens(user, origin, reason="signed_out_everywhere")
        audit.record(Type.OTHER_SESSIONS_ENDED, user=user, actor=user, origin=origin, count=len(keys))
    return len(keys)
