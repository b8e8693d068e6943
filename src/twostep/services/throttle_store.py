"""Where failed-password counters live: the database by default, Redis when configured.

Both stores keep the same rule: failures on a key are forgotten after a quiet window, and past
the free attempts each failure blocks the key for a doubling delay. Check and count are one
step (ASVS 15.4.2): an attempt is *reserved* before its password is hashed, and from then on
it counts as a failure until it proves right, so concurrent guesses cannot all pass a check
made before any of them failed. A key keeps two numbers:

- `failures`: failures so far, the attempts still being checked included;
- `pending`: attempts admitted and still being checked.

An attempt is admitted when no key is blocked and, should every pending attempt fail, none
would be blocked either; else it is refused (blocked) or told to wait (busy: the pending ones
decide). A pending attempt that never reports (its process died) stays a failure, and stops
holding others back after LEASE. If the store cannot be read or written, the attempt is
refused (SECURITY.md, "Fail closed").
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from ..models import Throttle
from .errors import ServiceError

# Failed passwords are forgotten after a quiet hour.
WINDOW = timedelta(hours=1)
# A pending attempt older than this (with no news on its key) no longer makes others wait.
LEASE = timedelta(seconds=30)

ADMITTED, BLOCKED, BUSY = "admitted", "blocked", "busy"


class StoreUnavailable(ServiceError):
    code = "throttle_unavailable"
    default_message = _("Sign-in is unavailable for a moment. Please try again shortly.")


def _seconds_until(moment: datetime | None, now: datetime) -> int:
    if moment is None or moment <= now:
        return 0
    return math.ceil((moment - now).total_seconds())


class DatabaseStore:
    """Rows of Throttle, locked in key order so overlapping reservations queue, never deadlock."""

    def _locked_rows(self, keys, now: datetime, create: bool) -> list[Throttle] | None:
        if create:
            # ON CONFLICT DO NOTHING: the first attempts on a key may race to create its row.
            Throttle.objects.bulk_create([Throttle(key=k, updated_at=now) for k in keys],
                                         ignore_conflicts=True)
        rows = list(Throttle.objects.select_for_update().filter(key__in=keys).order_by("key"))
        if create and len(rows) < len(keys):
            return None  # a row was deleted between the insert and the lock
        for row in rows:
            if row.updated_at < now - WINDOW:
                row.failures = row.pending = 0
            elif row.pending and row.updated_at < now - LEASE:
                row.pending = 0  # they stay counted as failures
        return rows

    def _with_rows(self, keys, now: datetime, step):
        """Run step(rows) in a transaction on every key's row, created if missing, locked."""
        keys = sorted(set(keys))
        for _attempt in range(3):
            with transaction.atomic():
                rows = self._locked_rows(keys, now, create=True)
                if rows is not None:
                    return step(rows)
        raise StoreUnavailable()

    def reserve(self, keys, now: datetime, delay_for) -> tuple[str, int]:
        """Admit and count one attempt on every key, or say why not: (ADMITTED|BLOCKED|BUSY, wait).

        `delay_for(key, failures)` gives the block a count of failures earns.
        """
        def step(rows):
            wait = max(_seconds_until(row.blocked_until, now) for row in rows)
            if wait or any(row.pending and delay_for(row.key, row.failures) for row in rows):
                transaction.set_rollback(True)  # a refused attempt leaves nothing behind
                return (BLOCKED, wait) if wait else (BUSY, 0)
            for row in rows:
                row.failures += 1
                row.pending += 1
                row.updated_at = now
                row.save(update_fields=["failures", "pending", "blocked_until", "updated_at"])
            return ADMITTED, 0

        return self._with_rows(keys, now, step)

    def fail(self, keys, now: datetime, delay_for) -> None:
        """The reserved attempt was wrong: it stays counted; block for what the count earns."""
        def step(rows):
            for row in rows:
                if row.pending:
                    row.pending -= 1
                elif not row.failures:
                    row.failures = 1  # the count was lost (window over): count it again
                wait = delay_for(row.key, row.failures)
                if wait:
                    row.blocked_until = max(row.blocked_until or now, now + timedelta(seconds=wait))
                row.updated_at = now
                row.save(update_fields=["failures", "pending", "blocked_until", "updated_at"])

        self._with_rows(keys, now, step)

    def succeed(self, clear, give_back, now: datetime) -> None:
        """The reserved attempt was right: forget the failures on `clear`, give `give_back` its one."""
        clear, give_back = set(clear), set(give_back)
        with transaction.atomic():
            empty = []
            for row in self._locked_rows(sorted(clear | give_back), now, create=False):
                row.pending = max(row.pending - 1, 0)
                if row.key in clear:
                    row.failures = row.pending  # the attempts still being checked still count
                    row.blocked_until = None
                else:
                    row.failures = max(row.failures - 1, 0)
                if not row.failures and not row.pending:
                    empty.append(row.pk)
                else:
                    row.save(update_fields=["failures", "pending", "blocked_until"])
            if empty:  # the rows are locked: one statement for all
                Throttle.objects.filter(pk__in=empty).delete()


# Redis: each key is a hash {f: failures, p: pending, b: blocked until, t: updated at}, expiring
# after a quiet window. Each step is one Lua script: no other client runs inside it.
# ARGV of reserve and fail: now, window, lease, table length T, then T delays (counts 1..T) per key.
_READ = """
local now, window, lease, T = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function read(key)
  local v = redis.call('HMGET', key, 'f', 'p', 'b', 't')
  local f, p = tonumber(v[1] or '0'), tonumber(v[2] or '0')
  local b, t = tonumber(v[3] or '0'), tonumber(v[4] or '0')
  if p > 0 and t < now - lease then p = 0 end
  return f, p, b, v[1] ~= false
end
local function delay(i, f)
  if f < 1 then return 0 end
  return tonumber(ARGV[4 + (i - 1) * T + math.min(f, T)])
end
"""
_RESERVE = _READ + """
local blocked, busy, f, p = 0, false, {}, {}
for i, key in ipairs(KEYS) do
  local b
  f[i], p[i], b = read(key)
  if b > now and b > blocked then blocked = b end
  if p[i] > 0 and delay(i, f[i]) > 0 then busy = true end
end
if blocked > 0 then return {'blocked', tostring(blocked)} end
if busy then return {'busy', '0'} end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'f', f[i] + 1, 'p', p[i] + 1, 't', tostring(now))
  redis.call('EXPIRE', key, window)
end
return {'admitted', '0'}
"""
_FAIL = _READ + """
for i, key in ipairs(KEYS) do
  local f, p, b, exists = read(key)
  if p > 0 then p = p - 1 elseif f < 1 then f = 1 end
  local wait = delay(i, f)
  if wait > 0 and now + wait > b then b = now + wait end
  redis.call('HSET', key, 'f', f, 'p', p, 't', tostring(now))
  if b > now then redis.call('HSET', key, 'b', tostring(b)) end
  redis.call('EXPIRE', key, math.max(window, wait))
end
return 1
"""
# KEYS[1..ARGV[5]] are cleared, the rest given back one attempt (no delay tables here).
_SUCCEED = _READ + """
for i, key in ipairs(KEYS) do
  local f, p, b, exists = read(key)
  if exists then
    if p > 0 then p = p - 1 end
    if i <= tonumber(ARGV[5]) then
      f = p
      redis.call('HDEL', key, 'b')
    elseif f > 0 then
      f = f - 1
    end
    if f == 0 and p == 0 then redis.call('DEL', key) else redis.call('HSET', key, 'f', f, 'p', p) end
  end
end
return 1
"""
_PREFIX = "twostep:throttle:"
_TABLE = 40  # delays are precomputed for counts 1..40; beyond, the last (capped) one holds


class RedisStore:
    """The same rules in Redis: one Lua script per step."""

    def __init__(self, url: str, prefix: str = _PREFIX):
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._scripts = {name: self._redis.register_script(text)
                         for name, text in (("reserve", _RESERVE), ("fail", _FAIL), ("succeed", _SUCCEED))}
        self._errors = (redis.RedisError, OSError)
        self._prefix = prefix

    def _run(self, name, keys, now: datetime, delay_for=None, extra=()):
        args = [now.timestamp(), int(WINDOW.total_seconds()), int(LEASE.total_seconds()), _TABLE]
        for key in keys if delay_for else ():
            args += [delay_for(key, n) for n in range(1, _TABLE + 1)]
        try:
            return self._scripts[name](keys=[self._prefix + key for key in keys], args=[*args, *extra])
        except self._errors as error:
            raise StoreUnavailable() from error

    def reserve(self, keys, now: datetime, delay_for) -> tuple[str, int]:
        """Same contract as DatabaseStore.reserve."""
        state, until = self._run("reserve", sorted(set(keys)), now, delay_for)
        state = state.decode()
        if state == BLOCKED:
            return BLOCKED, max(1, math.ceil(float(until) - now.timestamp()))
        return state, 0

    def fail(self, keys, now: datetime, delay_for) -> None:
        """Same contract as DatabaseStore.fail."""
        self._run("fail", sorted(set(keys)), now, delay_for)

    def succeed(self, clear, give_back, now: datetime) -> None:
        """Same contract as DatabaseStore.succeed."""
        clear = sorted(set(clear))
        self._run("succeed", [*clear, *sorted(set(give_back) - set(clear))], now, extra=[len(clear)])


@cache
def _store_for(url: str):
    return RedisStore(url) if url else DatabaseStore()


def store():
    """Return the configured store (Redis if TWOSTEP_REDIS_URL is set, else the database)."""
    return _store_for(settings.REDIS_URL or "")
