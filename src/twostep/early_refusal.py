"""Early refusal: a stranger's sign-in is turned away in front of Django while the hashing gate is full.

The hashing gate (services/admission.py) refuses a sign-in before any database work, but only
once the request has passed Django's whole middleware stack: the session and the user read
from the database, the CSRF check, the form. In a flood of wrong passwords from many addresses
that work, done for every refused request, fills the CPUs, and the members' requests wait
behind it for a thread. This WSGI layer, wrapped around Django's application (config/wsgi.py),
looks first: a sign-in — `POST /login`, `POST /api/v1/auth/login` — is answered at once with
503 and Retry-After when

- the gate's normal lane would refuse it now (the same `Gate.refusal` the sign-in service asks
  later: every slot taken, and the lane full or its predicted wait past the deadline), and
- the request carries no valid device cookie (services/devices.py: the signature and age are
  checked, an HMAC, no database) — a member's browser always goes on to Django, which puts the
  login typed in the priority lane if the cookie is for it.

It never refuses while a slot is free or a stranger may still wait, and it touches nothing but
the sign-in paths: every other page and API call, a signed-in person's included, goes to Django.
A refused sign-in was not checked and not counted, as at the gate itself.

The answer is the gate's: the API's JSON `busy` error, or for a browser a small page in its
language (the language cookie, else Accept-Language) saying when to try again. Both pass the
same cheap middleware the app's answers pass (request id, Django's security headers, the pages'
Content-Security-Policy, no caching), so they carry the same headers; none of that middleware
reads the database.

Each refusal is counted (`twostep_password_checks_busy{lane="normal"}`, and
`twostep_sign_ins_refused_early` by transport) and summed up in one log line every
LOG_INTERVAL seconds at most.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property

from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse, parse_cookie
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.module_loading import import_string

from . import metrics
from .services import admission, devices

log = logging.getLogger("twostep.admission")

# Seconds between two log lines summing up the refusals.
LOG_INTERVAL = 10.0
# The app's own middleware the answer passes, outermost first: the same order as in the
# settings, and none of them reads the database or the session.
CHEAP_MIDDLEWARE = (
    "twostep.web.request_middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "twostep.web.middleware.LanguageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "twostep.web.middleware.SecurityHeadersMiddleware",
)
PAGE, API = "page", "api"


def path_info(name: str) -> str:
    """The path of a named URL as PATH_INFO has it: without the script prefix (SCRIPT_NAME)."""
    prefix, path = get_script_prefix(), reverse(name)
    return "/" + path[len(prefix):] if path.startswith(prefix) else path


def has_device_cookie(environ: dict) -> bool:
    """Tell whether the request carries a device cookie this server signed and that has not expired."""
    header = environ.get("HTTP_COOKIE")
    if not header or devices.COOKIE_NAME not in header:
        return False
    return devices.valid(parse_cookie(header).get(devices.COOKIE_NAME))


class RefusalLog:
    """Count refusals and write at most one line every `interval` seconds with the count since the last."""

    def __init__(self, interval: float = LOG_INTERVAL, clock=time.monotonic):
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._counts = {PAGE: 0, API: 0}
        self._since = clock()
        self._last = None

    def note(self, transport: str, retry_after: int) -> None:
        with self._lock:
            self._counts[transport] += 1
            now = self._clock()
            if self._last is not None and now - self._last < self.interval:
                return
            counts, since = dict(self._counts), self._since
            self._counts = dict.fromkeys(self._counts, 0)
            self._since = self._last = now
        log.warning("the hashing gate is full: sign-ins refused before Django in the last %.0f s: %d "
                    "(pages %d, API %d); told to come back in %d s",
                    now - since, sum(counts.values()), counts[PAGE], counts[API], retry_after)


class EarlyRefusal:
    """WSGI middleware: refuse a stranger's sign-in with 503 while the hashing gate is full."""

    def __init__(self, application, *, gate=admission.gate, refusals: RefusalLog | None = None):
        self.application = application
        self._gate = gate
        self.refusals = refusals or RefusalLog()

    @cached_property
    def paths(self) -> dict[str, str]:
        """The two sign-in paths as PATH_INFO has them."""
        return {path_info("web:login"): PAGE, path_info("api:login"): API}

    @cached_property
    def _answer(self):
        handler = self._render
        for path in reversed(CHEAP_MIDDLEWARE):
            handler = import_string(path)(handler)
        return handler

    def retry_after(self, environ: dict) -> int | None:
        """Return the seconds to tell the client to wait if this request is refused here, else None."""
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in self.paths:
            return None
        wait = self._gate().refusal(priority=False)
        if wait is None or has_device_cookie(environ):
            return None
        return wait

    def __call__(self, environ, start_response):
        wait = self.retry_after(environ)
        if wait is None:
            return self.application(environ, start_response)
        transport = self.paths[environ["PATH_INFO"]]
        metrics.count_busy(priority=False)
        metrics.count_early_refusal(transport)
        self.refusals.note(transport, wait)
        request = WSGIRequest(environ)
        request.early_refusal = (transport, wait)
        try:
            response = self._answer(request)
        finally:
            translation.deactivate()
        headers = [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return [response.content]

    @staticmethod
    def _render(request) -> HttpResponse:
        transport, wait = request.early_refusal
        busy = admission.Busy(wait)
        if transport == API:
            from .api import api, errors

            # The API's own rendering of the error (Retry-After included), uncached as every API answer.
            response = errors.render(api, request, busy)
            add_never_cache_headers(response)
            return response
        from .web.views.common import wait_text

        query = request.META.get("QUERY_STRING", "")
        html = render_to_string("twostep/signin/busy.html", {
            "wait": wait_text(wait), "login_url": reverse("web:login") + (f"?{query}" if query else ""),
        })
        response = HttpResponse(html, status=503)
        response["Retry-After"] = str(wait)
        return response


def wrap(application):
    """Return `application` behind the early refusal."""
    return EarlyRefusal(application)
