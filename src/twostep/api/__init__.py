"""The JSON API v1 (DESIGN.md §3): the same services as the pages, over django-ninja.

Every response, the OpenAPI document included, passes one guard: unsafe methods must carry the
CSRF token, nothing is cached (ASVS 14.3.2), and a wrong method or an unknown address answers
in the API's error shape rather than Django's plain text or HTML.
"""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponseNotAllowed
from django.urls import URLPattern, re_path
from django.utils.cache import add_never_cache_headers
from ninja import NinjaAPI

from ..services.errors import NotFound, ServiceError
from . import account, auth, errors, me
from .security import check_csrf

DESCRIPTION = """\
Sign-in with a password and a second factor (authenticator app or backup code), and the
management of both, for a browser app on the same site.

**Session.** Authentication is the `twostep_session` cookie. Start with `GET /auth/session`:
it sets the `csrftoken` cookie. Every POST and PUT (sign-in included) sends that cookie's value
in the `X-CSRFToken` header, or gets 403 `csrf_failed`. The cookie's value changes on a full
sign-in: read it again before each unsafe request.

**Stages.** `POST /auth/login` may leave the session at `second_factor` (send
`POST /auth/second-factor` next; nothing else is open) or `setup_required` (the account
requires 2FA: only `/auth/session`, `/auth/logout` and `/me/two-factor*` setup routes answer,
others give 403 `two_factor_setup_required`).

**Errors** are `{"error": "<code>", "message": "<text for a person>"}`; 429 carries a
`Retry-After` header; wrong input shapes are 422 `invalid_input` naming the field.
"""


def _guard(api, view):
    """Wrap one URL's view: CSRF for unsafe methods, no caching, errors in the API's shape."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        try:
            check_csrf(request)
            response = view(request, *args, **kwargs)
        except ServiceError as error:
            response = errors.render(api, request, error)
        except Http404:  # ninja's root view raises it outside the operation handlers
            response = errors.render(api, request, NotFound(errors.NOWHERE))
        except RequestDataTooBig:  # the CSRF check reads a form body for its token field
            response = errors.render(api, request, errors.RequestTooLarge())
        if isinstance(response, HttpResponseNotAllowed):
            allow = response["Allow"]
            response = errors.render(api, request, errors.MethodNotAllowed())
            response["Allow"] = allow
        add_never_cache_headers(response)
        return response

    guarded.csrf_exempt = True  # checked above, for every URL alike
    return guarded


class TwostepAPI(NinjaAPI):
    @property
    def urls(self):
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                pattern.callback = _guard(self, pattern.callback)
        patterns.append(re_path(r"^", _guard(self, self._not_found), name="not-found"))
        return patterns, app_name, namespace

    def _not_found(self, request, *args, **kwargs):
        return errors.render(self, request, NotFound(errors.NOWHERE))


api = TwostepAPI(title="twostep", version="1", urls_namespace="api", description=DESCRIPTION,
                 parser=errors.JsonParser())
errors.install(api)
api.add_router("/auth", auth.router)
api.add_router("/me", me.router)
api.add_router("/me", "twostep.api.authenticators.router")  # apps, security keys, passkeys
api.add_router("/auth", "twostep.api.authenticators.auth_router")  # WebAuthn sign-in steps
api.add_router("/account", account.router)
api.add_router("/me", "twostep.api.sessions.router")  # sessions, remembered browsers
api.add_router("/account", "twostep.api.activity.router")
api.add_router("", "twostep.api.recovery.router")  # password reset/change, recovery passes
