"""Every API error as `{"error": "<code>", "message": "<text for a person>"}`.

Domain errors come from the services (ServiceError: code, status, message, extra); the few
errors only the transport can have (no session, no CSRF token, a body that is not JSON) are
ServiceError subclasses here, so one handler renders them all.
"""

from __future__ import annotations

import json
import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from ..http import status_for
from ..services.admission import Busy
from ..services.errors import InvalidInput, NotFound, ServiceError, Throttled

log = logging.getLogger("django.request")


class NotAuthenticated(ServiceError):
    code, status = "not_authenticated", 401
    default_message = _("Sign in first.")


class SetupRequired(ServiceError):
    code, status = "two_factor_setup_required", 403
    default_message = _("Your organisation requires two-factor authentication: set up an "
                        "authenticator app before doing anything else.")


class CsrfFailed(ServiceError):
    code, status = "csrf_failed", 403
    default_message = _("The request was refused because it did not carry this site's CSRF token. "
                        "Call GET /api/v1/auth/session, then send the value of the csrftoken cookie "
                        "in the X-CSRFToken header.")


class Forbidden(ServiceError):
    code, status = "forbidden", 403
    default_message = _("You may not do this.")


class MethodNotAllowed(ServiceError):
    code, status = "method_not_allowed", 405
    default_message = _("This address does not accept that method.")


class RequestTooLarge(ServiceError):
    code, status = "request_too_large", 413
    default_message = _("The request body is too large.")


class UnsupportedMediaType(ServiceError):
    code, status = "unsupported_media_type", 415
    default_message = _("Send the request body as JSON, with the header Content-Type: application/json.")


class ServiceUnavailable(ServiceError):
    code, status = "service_unavailable", 503
    default_message = _("The service is briefly unavailable. Please try again in a few seconds.")


# Seconds a client is told to wait after a 503 (the database or the throttle store was away).
RETRY_AFTER_SECONDS = 5


class BadRequest(ServiceError):
    code, status = "bad_request", 400
    default_message = _("The request could not be understood.")


class ServerError(ServiceError):
    code, status = "server_error", 500
    default_message = _("Something went wrong on the server. Please try again later.")


class HttpStatusError(ServiceError):
    """An HTTP error ninja raised with a status of its own."""

    def __init__(self, message, *, status: int):
        super().__init__(message)
        self.status = status


NOWHERE = _("There is nothing at this address.")


class MalformedJson(ValueError):
    """The body is not JSON; `message` says where, for a person."""

    def __init__(self, message):
        self.message = message
        super().__init__(str(message))


class JsonParser(Parser):
    """Parse bodies as JSON, saying where a malformed one goes wrong."""

    def parse_body(self, request):
        try:
            data = json.loads(request.body)
        except json.JSONDecodeError as error:
            raise MalformedJson(
                _("The request body is not valid JSON (line %(line)d, column %(column)d: %(problem)s).")
                % {"line": error.lineno, "column": error.colno, "problem": error.msg}
            ) from None
        except (ValueError, RecursionError):  # bad UTF-8; nesting deep enough to exhaust the stack
            raise MalformedJson(_("The request body is not valid UTF-8 JSON.")) from None
        if not isinstance(data, dict):
            raise MalformedJson(_("The request body must be a JSON object."))
        return data


# Rendering ---------------------------------------------------------------------------------

def payload(error: ServiceError) -> dict:
    """Return the JSON body for a ServiceError: code, message and any extra items."""
    body = {"error": error.code, "message": str(error.message)}
    for key, value in error.extra.items():
        body.setdefault(key, value)
    if isinstance(error, Throttled):
        body["retry_after"] = error.retry_after
        body["locked"] = error.locked
    if isinstance(error, Busy):
        body["retry_after"] = error.retry_after
    return body


def render(api, request, error: ServiceError):
    status = status_for(error)
    response = api.create_response(request, payload(error), status=status)
    if isinstance(error, (Throttled, Busy)):
        response["Retry-After"] = str(error.retry_after)
    elif status == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


# Validation messages -----------------------------------------------------------------------

# pydantic's error type -> a sentence naming the field; ctx items fill the placeholders.
_PROBLEMS = {
    "missing": _("%(field)s is required."),
    "string_type": _("%(field)s must be a string."),
    "string_unicode": _("%(field)s must be valid Unicode text."),
    "bool_type": _("%(field)s must be true or false."),
    "int_type": _("%(field)s must be a whole number."),
    "int_parsing": _("%(field)s must be a whole number."),
    "int_from_float": _("%(field)s must be a whole number."),
    "greater_than_equal": _("%(field)s must be at least %(ge)s."),
    "less_than_equal": _("%(field)s must be at most %(le)s."),
    "string_too_long": _("%(field)s must be at most %(max_length)s characters long."),
    "literal_error": _("%(field)s must be one of %(expected)s."),
    "enum": _("%(field)s must be one of %(expected)s."),
    "model_type": _("%(field)s must be a JSON object."),
    "model_attributes_type": _("%(field)s must be a JSON object."),
    "dict_type": _("%(field)s must be a JSON object."),
    "extra_forbidden": _("%(field)s is not a parameter of this address."),
}
_EMPTY = _("%(field)s must not be empty.")
_TOO_SHORT = _("%(field)s must be at least %(min_length)s characters long.")
_OTHER = _("%(field)s is not valid: %(problem)s")
_BODY = _("The request body")


def _field(loc) -> str:
    """Name the field: loc is (source, [parameter,] field, ...), e.g. ("body", "body", "login")."""
    parts = [str(p) for p in loc[1:]]
    if loc and loc[0] == "body":
        parts = parts[1:]
    elif loc and loc[0] == "query":
        parts = parts[-1:]  # a query string is flat: the last part is the parameter's name
    return ".".join(parts) or "body"


def _sentence(error: dict) -> str:
    kind, ctx = error.get("type", ""), dict(error.get("ctx") or {})
    field = _field(error.get("loc") or ())
    values = {"field": str(_BODY) if field == "body" else field,
              **{k: v for k, v in ctx.items() if k != "error"}}
    if kind == "string_too_short":
        template = _EMPTY if ctx.get("min_length") == 1 else _TOO_SHORT
    elif kind == "value_error":
        # Our own validators raise ValueError with a sentence; pydantic prefixes "Value error, ".
        return f"{values['field']}: {ctx.get('error') or error.get('msg', '')}"
    else:
        template = _PROBLEMS.get(kind, _OTHER)
    try:
        return str(template) % {**values, "problem": error.get("msg", "")}
    except (KeyError, TypeError, ValueError):
        return str(_OTHER) % {"field": values["field"], "problem": error.get("msg", "")}


def invalid_input(errors: list[dict]) -> InvalidInput:
    """Turn ninja's validation errors into one readable message (input values never echoed)."""
    sentences = [_sentence(e) for e in errors]
    fields = {}
    for error, sentence in zip(errors, sentences, strict=True):
        fields.setdefault(_field(error.get("loc") or ()), sentence)
    return InvalidInput(" ".join(dict.fromkeys(sentences)), fields=fields)


# Handlers ----------------------------------------------------------------------------------

_HTTP_ERRORS = {400: BadRequest, 401: NotAuthenticated, 403: Forbidden, 404: NotFound,
                405: MethodNotAllowed, 413: RequestTooLarge, 415: UnsupportedMediaType}


def install(api) -> None:
    """Register the handlers that give every failure the same JSON shape."""

    def service_error(request, error: ServiceError):
        return render(api, request, error)

    def validation_error(request, error: NinjaValidationError):
        return render(api, request, invalid_input(error.errors))

    def http_error(request, error: HttpError):
        if isinstance(error.__cause__, MalformedJson):  # ninja wraps the parser's error
            return render(api, request, InvalidInput(error.__cause__.message))
        if isinstance(error, AuthenticationError):
            return render(api, request, NotAuthenticated())
        kind = _HTTP_ERRORS.get(error.status_code)
        if kind is None:
            return render(api, request, HttpStatusError(str(error), status=error.status_code))
        return render(api, request, kind())

    def not_found(request, error: Http404):
        return render(api, request, NotFound(NOWHERE))

    def unexpected(request, error: Exception):
        if isinstance(error, RequestDataTooBig):
            return render(api, request, RequestTooLarge())
        if isinstance(error, SuspiciousOperation):
            logging.getLogger("django.security").warning("%s", error)
            return render(api, request, BadRequest())
        if isinstance(error, PermissionDenied):
            return render(api, request, Forbidden())
        if isinstance(error, (OperationalError, InterfaceError)):
            # The database is away (or the connection died): a JSON 503 the client can retry,
            # and one log line instead of a traceback per request.
            text = str(error).strip()
            log.warning("database unavailable, answered 503: %s %s (%s: %s)", request.method, request.path,
                        type(error).__name__, text.splitlines()[0] if text else "")
            return render(api, request, ServiceUnavailable())
        log.error("Internal Server Error: %s", request.path, exc_info=error,
                  extra={"status_code": 500, "request": request})
        return render(api, request, ServerError())

    api.add_exception_handler(ServiceError, service_error)
    api.add_exception_handler(NinjaValidationError, validation_error)
    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(Http404, not_found)
    api.add_exception_handler(Exception, unexpected)
