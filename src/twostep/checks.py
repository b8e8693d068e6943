"""System checks: refuse unsafe configurations at start."""

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
    if not settings.DEBUG and not settings.SESSION_COOKIE_SECURE:
        problems.append(Warning(
            "Cookies are sent over plain HTTP. Behind HTTPS set TWOSTEP_SECURE_COOKIES=true.",
            id="twostep.W001"))
    return problems
