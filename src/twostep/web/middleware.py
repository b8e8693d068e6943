"""Middleware for the pages: the language, the forced 2FA setup, and the security headers."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django.utils.cache import add_never_cache_headers, patch_vary_headers

from .. import signin_state

API_PREFIX = "/api/"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "img-src 'self' data:",
    "style-src 'self'",
    "script-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
# The pages use none of these; the clipboard is reached only through a user's click.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()" for feature in (
        "accelerometer", "camera", "display-capture", "geolocation", "gyroscope",
        "magnetometer", "microphone", "payment", "usb",
    )
)


def content_security_policy(request, response) -> str:
    """The pages' policy; a page of a sign-in for an application may also post to where that
    application's redirect URI is (signin_state.allow_form_target, or the page's own
    `form_targets`, e.g. the logout confirmation's post-logout URI)."""
    if not response.get("Content-Type", "").startswith("text/html"):
        return CONTENT_SECURITY_POLICY
    targets = set(getattr(response, "form_targets", ())) | set(signin_state.form_targets(request))
    if not targets:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("form-action 'self'", " ".join(["form-action 'self'", *sorted(targets)]))


def _activate(request, language: str) -> None:
    translation.activate(language)
    request.LANGUAGE_CODE = translation.get_language()


class LanguageMiddleware:
    """Choose the language: the language cookie if set, else the browser's Accept-Language.

    It runs before authentication; UserLanguageMiddleware then applies a signed-in user's
    saved choice, so the choice follows the user to every browser.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _activate(request, translation.get_language_from_request(request))
        response = self.get_response(request)
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


class SessionLimitsMiddleware:
    """End a signed-in session idle or old past its limits, on the server (pages and API alike).

    Runs after AuthenticationMiddleware; also notes the session's last use once a minute.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        signin_state.end_if_expired(request)
        return self.get_response(request)


class UserLanguageMiddleware:
    """Apply the signed-in user's saved language (runs after AuthenticationMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and user.language in dict(settings.LANGUAGES):
            _activate(request, user.language)
        return self.get_response(request)


@cache
def _setup_paths() -> frozenset[str]:
    # A security key or passkey may be the first authenticator as well as an app.
    names = ("web:setup", "web:setup_confirm", "web:add_key", "web:logout", "web:language", "web:healthz",
             "web:readyz")
    return frozenset(reverse(name) for name in names)


@cache
def _sign_in_paths() -> frozenset[str]:
    return frozenset(reverse(name) for name in ("web:login", "web:login_code", "web:login_backup_code"))


class SetupRequiredMiddleware:
    """Send a user whose account requires 2FA, and who has none yet, to the setup page.

    That covers the half-signed-in user the password step sent there and a signed-in user whose
    account started requiring 2FA later. Static files, the health check and the API (which
    enforces the same rule itself) are left alone; so are the sign-in pages for someone not yet
    signed in, who may start again as someone else.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        exempt = (
            path.startswith(API_PREFIX)
            or path.startswith(settings.STATIC_URL)
            or path in _setup_paths()
            or (path in _sign_in_paths() and not request.user.is_authenticated)
        )
        if not exempt and signin_state.setup_required(request):
            return redirect("web:setup")
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """Add a strict Content-Security-Policy and Permissions-Policy; never cache a page.

    Pages show codes, keys and account details, so no HTML page is kept by the browser or a
    proxy (ASVS 14.3.2). The API sets its own headers.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path_info.startswith(API_PREFIX):
            return response
        response.headers.setdefault("Content-Security-Policy", content_security_policy(request, response))
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if response.get("Content-Type", "").startswith("text/html") and not _never_cached(response):
            add_never_cache_headers(response)
        return response


def _never_cached(response) -> bool:
    """Whether never_cache has marked the response already (most views): not parsed again."""
    directives = response.get("Cache-Control", "")
    return "no-store" in directives and "private" in directives and response.has_header("Expires")


class DeviceCookieMiddleware:
    """Give a browser that just completed a sign-in (page or API) its device cookie.

    Every full sign-in passes signin_state.WebSession.complete, which notes the login on the
    request; the cookie goes out with that request's answer (services/devices.py).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        signin_state.set_device_cookie(request, response)
        return response
