"""Friendly error pages. 403 and 404 use Django's handlers with our templates; 500 comes here.

The 500 handler also receives every error raised while the database is away — in a view or in a
middleware that reads the session — and answers those 503 with Retry-After: a plain page for
the pages, the API's JSON error for the API. Both stay readable without a database.
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.defaults import server_error as django_server_error

log = logging.getLogger("twostep.web")

DATABASE_ERRORS = (OperationalError, InterfaceError)


def csrf_failure(request, reason=""):
    """Explain a failed CSRF check in words a person can act on (settings.CSRF_FAILURE_VIEW)."""
    return render(request, "twostep/errors/csrf.html", status=403)


def server_error(request):
    """handler500: 503 when the database is unreachable, else 500; JSON under /api/."""
    error = sys.exc_info()[1]
    on_api = request.path_info.startswith("/api/")
    if isinstance(error, DATABASE_ERRORS):
        from ...api.errors import RETRY_AFTER_SECONDS, ServiceUnavailable, payload

        # One line per refused request, not a traceback: the outage is the news, not the stack.
        log.warning("database unavailable, answered 503: %s %s (%s: %s)", request.method, request.path,
                    type(error).__name__, _first_line(error))
        if on_api:
            response = JsonResponse(payload(ServiceUnavailable()), status=503)
        else:
            page = loader.get_template("503.html").render({})
            response = HttpResponse(page, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        response._has_been_logged = True  # Django would log the traceback again as an error
        return response
    if on_api:
        from ...api.errors import ServerError, payload

        return JsonResponse(payload(ServerError()), status=500)
    return django_server_error(request)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
