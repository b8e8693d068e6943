"""System checks: refuse unsafe configurations at start."""

import ipaddress
import os
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

# Cache backends whose entries live inside one process, unseen by every other process.
PER_PROCESS_CACHES = {"django.core.cache.backends.locmem.LocMemCache"}
# Template tag libraries of this project that settings.TEMPLATES loads under Django's own names
# (`{% load i18n %}`, `{% load static %}`): the same tags and syntax, the same output.
OWN_TAG_LIBRARIES = "twostep.templatetags."
# Session engines that keep sessions in the cache named by SESSION_CACHE_ALIAS.
CACHE_SESSION_ENGINES = {"django.contrib.sessions.backends.cache", "django.contrib.sessions.backends.cached_db"}


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
    problems += _public_url_problems() + _metrics_problems() + _hashing_problems()
    if not settings.DEBUG and not settings.SESSION_COOKIE_SECURE:
        problems.append(Warning(
            "Cookies are sent over plain HTTP. Behind HTTPS set TWOSTEP_SECURE_COOKIES=true.",
            id="twostep.W001"))
    return problems


def _hashing_problems():
    from .hashers import meets_owasp

    problems = []
    memory, time, lanes = (settings.TWOSTEP_ARGON2_MEMORY_COST, settings.TWOSTEP_ARGON2_TIME_COST,
                           settings.TWOSTEP_ARGON2_PARALLELISM)
    if not meets_owasp(memory, time, lanes):
        problems.append(Error(
            f"Argon2 parameters m={memory} KiB, t={time}, p={lanes} are below OWASP's minimum for "
            "Argon2id (m=19456 KiB with t=2, or m=47104 KiB with t=1, or another of its "
            "equivalents). Raise TWOSTEP_ARGON2_MEMORY_COST or TWOSTEP_ARGON2_TIME_COST.",
            id="twostep.E020"))
    if (settings.TWOSTEP_HASH_CONCURRENCY < 0 or settings.TWOSTEP_HASH_QUEUE_TIMEOUT < 0
            or settings.TWOSTEP_HASH_PRIORITY_TIMEOUT < 0 or (settings.TWOSTEP_HASH_QUEUE_LENGTH or 0) < 0):
        problems.append(Error(
            "TWOSTEP_HASH_CONCURRENCY, TWOSTEP_HASH_QUEUE_LENGTH, TWOSTEP_HASH_QUEUE_TIMEOUT and "
            "TWOSTEP_HASH_PRIORITY_TIMEOUT must not be negative.", id="twostep.E021"))
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


def shared_state_caches() -> dict[str, str]:
    """Return {cache alias: what it holds} for each cache whose entries every process must see.

    Sign-in state must be shared: behind a load balancer, or with more than one gunicorn
    worker, the next request of a browser may reach another process. Codes, passes and
    throttle counters live in the database (throttle counters in Redis when configured);
    sessions do too unless SESSION_ENGINE puts them in a cache. A new piece of shared state
    kept in a cache must be named here.
    """
    if settings.SESSION_ENGINE in CACHE_SESSION_ENGINES:
        return {settings.SESSION_CACHE_ALIAS: f"the sessions (SESSION_ENGINE {settings.SESSION_ENGINE})"}
    return {}


def _in_memory(database: dict) -> bool:
    name = database.get("NAME")
    return (database.get("ENGINE", "").endswith("sqlite3") and not isinstance(name, Path)
            and (name == ":memory:" or "mode=memory" in str(name)))


@register()
def shared_state(app_configs, **kwargs):
    """Refuse a per-process store for state that every process must see."""
    problems = []
    for alias, holds in shared_state_caches().items():
        backend = settings.CACHES.get(alias, {}).get("BACKEND")
        if backend in PER_PROCESS_CACHES:
            problems.append(Error(
                f"The cache {alias!r} holds {holds}, but {backend} keeps them inside one process: "
                "a sign-in made on one process would be unknown to the others. Keep sessions in the "
                "database (django.contrib.sessions.backends.db) or give the cache a shared backend "
                "such as Redis.",
                id="twostep.E006"))
    if _in_memory(settings.DATABASES["default"]):
        problems.append(Error(
            "The database is SQLite in memory: every process would have its own, empty one. "
            "Give TWOSTEP_DATABASE_URL a file or a PostgreSQL server, or leave it unset.",
            id="twostep.E007"))
    return problems


@register(Tags.templates)
def template_libraries(app_configs, **kwargs):
    """Django's `templates.W003` (two modules under one library name), less this project's own.

    settings.TEMPLATES loads twostep's `{% translate %}` and `{% static %}` under Django's names
    on purpose; Django's check reported both at every start, so it is silenced and this one
    reports any other name that two modules claim.
    """
    from django.template import engines
    from django.template.backends.django import DjangoTemplates, get_template_tag_modules

    installed = defaultdict(set)
    for name, path in get_template_tag_modules():
        installed[name].add(path)
    problems = []
    for engine in engines.all():
        if not isinstance(engine, DjangoTemplates):
            continue
        claimed = defaultdict(set, {name: set(paths) for name, paths in installed.items()})
        for name, path in engine.engine.libraries.items():
            if path.startswith(OWN_TAG_LIBRARIES):
                claimed[name] = {path}  # replaces the library of that name, deliberately
            else:
                claimed[name].add(path)
        problems += [
            Warning(f"{name!r} is used for multiple template tag modules: "
                    f"{', '.join(repr(path) for path in sorted(paths))}",
                    obj=engine, id="twostep.W004")
            for name, paths in sorted(claimed.items()) if len(paths) > 1]
    return problems
