"""System checks: refuse unsafe configurations at start."""

import ipaddress
import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def twostep_settings(app_configs, **kwargs):
    problems = []
    limit = settings.TWOSTEP_SECOND_FACTOR_LOCK_AFTER
    if not 1 <= limit <= 100:
        problems.append(Error(
            "TWOSTEP_SECOND_FACTOR_LOCK_AFTER must be between 1 and 100 (NIST SP 800-63B §3.2.2).",
            id="twostep.E001"))
    if settings.TWOSTEP_SECOND_FACTOR_FREE_ATTEMPTS >= limit:
        problems.append(Error(
            "TWOSTEP_SECOND_FACTOR_FREE_ATTEMPTS must be below TWOSTEP_SECOND_FACTOR_LOCK_AFTER.",
            id="twostep.E002"))
    if not settings.TWOSTEP_ENCRYPTION_KEYS or not settings.TWOSTEP_CODE_HASH_KEYS:
        problems.append(Error("No encryption or code-hash key is configured.", id="twostep.E003"))
    problems += _public_url_problems() + _metrics_problems()
    if not settings.DEBUG and not settings.SESSION_COOKIE_SECURE:
        problems.append(Warning(
            "Cookies are sent over plain HTTP. Behind HTTPS set TWOSTEP_SECURE_COOKIES=true.",
            id="twostep.W001"))
    return problems


def _public_url_problems():
    url = settings.TWOSTEP_PUBLIC_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        return [Error(f"TWOSTEP_PUBLIC_URL must be an http(s) address such as https://sso.example.com, "
                      f"not {url!r}.", id="twostep.E005")]
    if not os.environ.get("TWOSTEP_PUBLIC_URL") and not settings.DEBUG:
        return [Warning(f"TWOSTEP_PUBLIC_URL is not set: links in mails (password reset) point to {url}.",
                        id="twostep.W002")]
    return []


def _metrics_problems():
    problems = []
    for entry in settings.TWOSTEP_METRICS_ALLOW:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            problems.append(Error(f"TWOSTEP_METRICS_ALLOW: {entry!r} is not an address or network.",
                                  id="twostep.E004"))
    if settings.TWOSTEP_METRICS and not (settings.TWOSTEP_METRICS_TOKEN or settings.TWOSTEP_METRICS_ALLOW):
        problems.append(Warning(
            "/metrics is open to anyone who reaches the service: set TWOSTEP_METRICS_TOKEN or "
            "TWOSTEP_METRICS_ALLOW.", id="twostep.W003"))
    return problems
