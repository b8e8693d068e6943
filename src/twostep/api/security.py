"""Who may call what: the CSRF check, and the session stages each route accepts.

Ninja marks its views csrf_exempt, so the API runs Django's own CSRF check itself, for every
unsafe method, before anything else (api/__init__.py). The stages come from signin_state, the
same as the pages: a half-signed-in session (password right, second factor pending) is
anonymous everywhere but the second step (ASVS 6.3.4), and a session whose account requires
2FA the user lacks may only set it up.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.middleware.csrf import CsrfViewMiddleware
from ninja.security import APIKeyCookie

from .. import signin_state
from ..services.signin import AUTHENTICATED, SETUP_REQUIRED
from .errors import CsrfFailed, SetupRequired

log = logging.getLogger("django.security.csrf")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check (token, Origin, Referer) that reports a refusal instead of rendering."""

    def _reject(self, request, reason):
        return reason


def _view():  # pragma: no cover - never called; a view that is not csrf_exempt
    return None


def check_csrf(request) -> None:
    """Raise CsrfFailed unless an unsafe request carries this site's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    check = _CsrfCheck(lambda _request: None)
    request.csrf_processing_done = False
    check.process_request(request)
    reason = check.process_view(request, _view, (), {})
    if reason is not None:
        log.warning("Forbidden (%s): %s", reason, request.path)
        raise CsrfFailed(reason=str(reason))


class _Session(APIKeyCookie):
    """The session cookie, as OpenAPI shows it; the CSRF check has run already."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=False)


class SignedIn(_Session):
    """A fully signed-in user (not one whose account's 2FA setup is still owed)."""

    def authenticate(self, request, key):
        stage = signin_state.stage(request)
        if stage == SETUP_REQUIRED:
            raise SetupRequired()
        if stage != AUTHENTICATED:
            return None  # -> 401 not_authenticated
        return request.user


class MaySetUp(_Session):
    """A signed-in user, or the half-signed-in user the account's policy sends to set up 2FA."""

    def authenticate(self, request, key):
        return signin_state.setup_user(request)


def not_during_setup(request):
    """Let anyone through except a session that owes its account's 2FA setup."""
    if signin_state.setup_required(request):
        raise SetupRequired()
    return True

