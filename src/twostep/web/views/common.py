"""What every page view shares: where to go next, who may see a page, how to show a wait."""

from __future__ import annotations

import math
from functools import wraps

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ...http import status_for
from ...services.admission import Busy
from ...services.errors import ServiceError, Throttled, WrongPassword
from .. import links


def next_param(request) -> str:
    """Return the requested `next` address if it is safe to go to, else ""."""
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


def next_url(request, default: str = "web:security") -> str:
    return next_param(request) or links.reverse(default)


def with_next(url_name: str, target: str) -> str:
    url = links.reverse(url_name)
    return f"{url}?{urlencode({REDIRECT_FIELD_NAME: target})}" if target else url


def set_language_cookie(response, language: str) -> None:
    """Make the browser remember the pages' language (Django's language cookie)."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, language, max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH, samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        secure=settings.SESSION_COOKIE_SECURE, httponly=True,
    )


def signed_in_required(view):
    """Let only a fully signed-in user in; anyone else goes to the sign-in page and back."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse(settings.LOGIN_URL))
        return view(request, *args, **kwargs)

    return wrapper


def wait_text(seconds: int) -> str:
    """Say how long to wait, in minutes once it is a minute or more."""
    if seconds < 60:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    minutes = math.ceil(seconds / 60)
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


def throttled_message(error: Throttled) -> str:
    if error.locked:
        return str(error.message)
    # One sentence with the wait, not the error's own "wait and try again" followed by it.
    return _("Too many failed attempts. Try again in %(wait)s.") % {"wait": wait_text(error.retry_after)}


def render_throttled(request, template: str, context: dict, error: Throttled):
    """Render a page refusing the attempt: HTTP 429 with Retry-After."""
    # retry_after lets the page's script hold the form's button back until the wait is over.
    context = {**context, "page_error": throttled_message(error), "retry_after": error.retry_after}
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(error.retry_after)
    return response


def render_busy(request, template: str, context: dict, error: Busy):
    """Render the page again when the server is too busy to check a password: 503 with Retry-After.

    The form keeps what was typed but the password, as after any refusal.
    """
    message = _("Many people are signing in right now, so your password was not checked yet. "
                "Please try again in %(wait)s.") % {"wait": wait_text(error.retry_after)}
    response = render(request, template, {**context, "page_error": message}, status=503)
    response["Retry-After"] = str(error.retry_after)
    return response


def refuse(request, template: str, context: dict, error: ServiceError, *, form=None, field: str | None = None):
    """Show a service's refusal on the page it came from: the pages' one answer to ServiceError.

    A throttled attempt answers 429 with Retry-After, a full hashing gate 503 with it; a wrong
    password goes to the form's password field, any other error to `field` when given, else to
    the top of the page. The status is http.status_for's.
    """
    if isinstance(error, Throttled):
        return render_throttled(request, template, context, error)
    if isinstance(error, Busy):
        return render_busy(request, template, context, error)
    if form is not None and isinstance(error, WrongPassword) and "password" in form.fields:
        form.fields["password"].required = True  # it may have been left out as fresh
        field = "password"
    if form is not None and field is not None:
        form.add_error(field, error.message)
    else:
        context = {**context, "page_error": error.message}
    return render(request, template, context, status=status_for(error))
