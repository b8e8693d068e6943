"""The JSON API v1 (DESIGN.md §3): the same services as the pages, over django-ninja.

Every response, the OpenAPI document included, passes one guard: a method the address does not
have is 405 with Allow, a body that is not JSON is 415, unsafe methods must carry the CSRF
token, nothing is cached (ASVS 14.3.2), and every error answers in the API's shape rather than
Django's plain text or HTML.
"""

from __future__ import annotations

import inspect
from functools import wraps

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponseNotAllowed
from django.urls import URLPattern, re_path
from django.utils.cache import add_never_cache_headers
from ninja import NinjaAPI
from ninja.operation import PathView

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


# Methods whose request may carry a body the API reads.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _allowed_methods(view) -> frozenset[str] | None:
    """Return the methods a URL's view answers, or None for the catch-all (any method: 404).

    Ninja's view for a path closes over its PathView, which lists each operation's methods; the
    OpenAPI document is read-only.
    """
    path_view = inspect.getclosurevars(view).nonlocals.get("self") if inspect.isfunction(view) else None
    if isinstance(path_view, PathView):
        methods = {method for operation in path_view.operations for method in operation.methods}
    else:
        methods = {"GET"}
    if "GET" in methods:
        methods.add("HEAD")  # HEAD is GET without the body (RFC 9110 §9.3.2)
    return frozenset(methods)


def _has_body(request) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 1
    return length > 0 or "HTTP_TRANSFER_ENCODING" in request.META


def _is_json(request) -> bool:
    kind = (request.content_type or "").lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _guard(api, view, allowed: frozenset[str] | None):
    """Wrap one URL's view: method, media type and CSRF checks; no caching; errors in the API's shape.

    The order matters: a method the address does not have is 405 before anything else (not a
    CSRF refusal), and a body that is not JSON is 415 before the CSRF check, which would
    otherwise read a multipart body and leave nothing for the JSON parser.
    """

    @wraps(view)
    def guarded(request, *args, **kwargs):
        method = request.method
        try:
            if allowed is not None and method not in allowed:
                response = errors.render(api, request, errors.MethodNotAllowed())
                response["Allow"] = ", ".join(sorted(allowed))
            elif method in _BODY_METHODS and _has_body(request) and not _is_json(request):
                response = errors.render(api, request, errors.UnsupportedMediaType())
            else:
                check_csrf(request)
                if method == "HEAD":
                    request.method = "GET"  # run as GET; HeadWithoutBodyMiddleware drops the body
                try:
                    response = view(request, *args, **kwargs)
                finally:
                    request.method = method
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
                pattern.callback = _guard(self, pattern.callback, _allowed_methods(pattern.callback))
        patterns.append(re_path(r"^", _guard(self, self._not_found, None), name="not-found"))
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
api.add_router("/me", "twostep.api.apps.router")  # apps with access (OpenID Connect)
api.add_router("/account", "twostep.api.activity.router")
api.add_router("", "twostep.api.recovery.router")  # password reset/change, recovery passes
