"""Small endpoints: the health checks (liveness, readiness) and the language switch."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from functools import cache

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from ... import metrics
from ...http import client_ip
from ...services import accounts
from ...services.errors import ServiceError
from .common import next_url, set_language_cookie

log = logging.getLogger("twostep.web")


@require_safe
@never_cache
def healthz(request):
    """Liveness: answer 200 whenever the process can answer at all; touches no database.

    A load balancer or orchestrator that restarts what fails this check must not restart every
    process because the database is away; /readyz tells whether to send traffic.
    """
    return JsonResponse({"status": "ok"})


@require_safe
@never_cache
def readyz(request):
    """Readiness: 200 when the database (and Redis, where configured) answer; else 503 naming them."""
    checks = {"database": _check(_ping_database)}
    if settings.REDIS_URL:
        checks["redis"] = _check(_ping_redis)
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        return JsonResponse({"status": "unavailable", "failed": failed, "checks": checks}, status=503)
    return JsonResponse({"status": "ok", "checks": checks})


def _check(ping) -> str:
    try:
        ping()
    except Exception as error:  # noqa: BLE001 — any failure means "not ready"; the log says which
        log.warning("readiness: %s failed: %s: %s", ping.__name__.removeprefix("_ping_"),
                    type(error).__name__, str(error).strip().splitlines()[0] if str(error).strip() else "")
        return "unavailable"
    return "ok"


def _ping_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


@cache
def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _ping_redis() -> None:
    _redis().ping()


@require_safe
@never_cache
def prometheus_metrics(request):
    """The Prometheus exposition (TWOSTEP_METRICS=true), for the token's holder or allowed addresses.

    Off, it is not there at all (404). A wrong or missing token is 401; an address outside
    TWOSTEP_METRICS_ALLOW is 403.
    """
    if not settings.TWOSTEP_METRICS:
        raise Http404()
    token = settings.TWOSTEP_METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    if settings.TWOSTEP_METRICS_ALLOW and not _address_allowed(client_ip(request)):
        return HttpResponse("Not from this address.\n", status=403, content_type="text/plain")
    return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)


def _address_allowed(address: str | None) -> bool:
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    # The entries were checked at start (system check twostep.E004).
    return any(ip in ipaddress.ip_network(entry, strict=False) for entry in settings.TWOSTEP_METRICS_ALLOW)


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
