"""Small endpoints: the health check and the language switch."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from ...services import accounts
from ...services.errors import ServiceError
from .common import next_url, set_language_cookie

log = logging.getLogger("twostep.web")


@require_safe
@never_cache
def healthz(request):
    """Answer 200 when the process can reach its database, 503 when it cannot."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 — any database failure means "not healthy"
        log.exception("health check: database unreachable")
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@require_POST
def set_language(request):
    """Switch the pages' language; remember it in a cookie and, when signed in, for the user."""
    language = request.POST.get("language", "")
    response = redirect(next_url(request, default="web:home"))
    if language not in dict(settings.LANGUAGES):
        return response
    if request.user.is_authenticated:
        try:
            accounts.set_language(request.user, language)
        except ServiceError:
            return response
    translation.activate(language)
    set_language_cookie(response, language)
    return response
