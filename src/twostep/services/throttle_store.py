"""Where failed-password counters live: the database by default, Redis when configured.

Both stores keep the same rule: failures on a key are forgotten after a quiet window, and past
the free attempts each failure blocks the key for a doubling delay. If the store cannot be
read or written, the attempt is refused (SECURITY.md, "Fail closed").
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from ..models import Throttle
from .errors import ServiceError

# Failed passwords are forgotten after a quiet hour.
WINDOW = timedelta(hours=1)


class StoreUnavailable(ServiceError):
    code = "throttle_unavailable"
    default_message = _("Sign-in is unavailable for a moment. Please try again shortly.")


class DatabaseStore:
    def blocked_for(self, keys, now: datetime) -> int:
        wait = 0
        for row in Throttle.objects.filter(key__in=keys, blocked_until__gt=now):
            wait = max(wait, math.ceil((row.blocked_until - now).total_seconds()))
        return wait

    def add_failure(self, key: str, now: datetime, delay_for) -> None:
        for attempt in range(2):
            try:
                with transaction.atomic():
                    row, _ = Throttle.objects.select_for_update().get_or_create(
                        key=key, defaults={"updated_at": now}
                    )
                    if row.updated_at < now - WINDOW:
                        row.failures = 0
                    row.failures += 1
                    wait = delay_for(row.failures)
                    row.blocked_until = now + timedelta(seconds=wait) if wait else None
                    row.updated_at = now
                    row.save()
                return
            except IntegrityError:  # two first failures at once: the other row won; retry
                if attempt:
                    raise

    def clear(self, keys) -> None:
        Throttle.objects.filter(key__in=keys).delete()


# Increment, then block for the delay the new count earns; all in one atomic script.
_ADD_FAILURE = """
local n = redis.call('HINCRBY', KEYS[1], 'f', 1)
local wait = tonumber(ARGV[math.min(n, #ARGV - 2)]) or 0
local now = tonumber(ARGV[#ARGV - 1])
if wait > 0 then
  local current = tonumber(redis.call('HGET', KEYS[1], 'b') or '0')
  if now + wait > current then redis.call('HSET', KEYS[1], 'b', tostring(now + wait)) end
end
redis.call('EXPIRE', KEYS[1], math.max(tonumber(ARGV[#ARGV]), wait))
return n
"""
_PREFIX = "twostep:throttle:"
_TABLE = 40  # delays are precomputed for counts 1..40; beyond, the last (capped) one holds


class RedisStore:
    def __init__(self, url: str):
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._redis.register_script(_ADD_FAILURE)
        self._errors = (redis.RedisError, OSError)

    def blocked_for(self, keys, now: datetime) -> int:
        try:
            values = [self._redis.hget(_PREFIX + key, "b") for key in keys]
        except self._errors as error:
            raise StoreUnavailable() from error
        stamp = now.timestamp()
        return max([math.ceil(float(v) - stamp) for v in values if v and float(v) > stamp] or [0])

    def add_failure(self, key: str, now: datetime, delay_for) -> None:
        delays = [delay_for(n) for n in range(1, _TABLE + 1)]
        try:
            self._script(keys=[_PREFIX + key],
                         args=[*delays, now.timestamp(), int(WINDOW.total_seconds())])
        except self._errors as error:
            raise StoreUnavailable() from error

    def clear(self, keys) -> None:
        try:
            self._redis.delete(*[_PREFIX + key for key in keys])
        except self._errors as error:
            raise StoreUnavailable() from error


@cache
def _store_for(url: str):
    return RedisStore(url) if url else DatabaseStore()


def store():
    """Return the configured store (Redis if TWOSTEP_REDIS_URL is set, else the database)."""
    return _store_for(settings.REDIS_URL or "")
