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
from datetime import UTC, datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from ..models import Throttle
from ..prepared import column, written
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
        rows = self._select_locked(keys)
        if create and len(rows) < len(keys):
            return None  # a row was deleted between the insert and the lock
        for row in rows:
            if row.updated_at < now - WINDOW:
                row.failures = row.pending = 0
            elif row.pending and row.updated_at < now - LEASE:
                row.pending = 0  # they stay counted as failures
        return rows

    def _select_locked(self, keys) -> list[Throttle]:
        """The keys' rows in key order, locked (the ORM's `select_for_update().filter(key__in=…)`).

        Written by hand: concurrent attempts from one address (an office, a NAT) take this path
        at every sign-in, and building the statement through the ORM cost more than running it.
        """
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        sql = written(connection, _select_rows).format(marks=", ".join(["%s"] * len(keys)), lock=lock)
        with connection.cursor() as cursor:
            cursor.execute(sql, list(keys))
            return [Throttle(id=pk, key=key, failures=failures, pending=pending, blocked_until=_aware(blocked),
                             updated_at=_aware(updated))
                    for pk, key, failures, pending, blocked, updated in cursor.fetchall()]

    def _save(self, rows) -> None:
        """Write the locked rows' counts back (what `row.save(update_fields=…)` wrote), one statement each."""
        if not rows:
            return
        adapt = connection.ops.adapt_datetimefield_value
        with connection.cursor() as cursor:
            cursor.executemany(written(connection, _update_row), [
                [row.failures, row.pending, adapt(row.blocked_until), adapt(row.updated_at), row.pk] for row in rows])

    def _with_rows(self, keys, now: datetime, step):
        """Run step(rows) in a transaction on every key's row, created if missing, locked."""
        keys = sorted(set(keys))
        for _attempt in range(3):
            with transaction.atomic():
                rows = self._locked_rows(keys, now, create=True)
                if rows is not None:
                    return step(rows)
        raise StoreUnavailable()

    def _insert_counted(self, keys, now: datetime) -> set[str] | None:
        """Insert each key's row counting one attempt (1 failure, 1 pending) where it has none.

        One statement; returns the keys it inserted, or None where the database cannot say
        (no RETURNING). A key without a row has nothing against it, so when every key was
        inserted the attempt is admitted and counted by this statement alone.
        """
        if not connection.features.can_return_rows_from_bulk_insert:
            return None
        quote = connection.ops.quote_name
        fields = {f.name: quote(f.column) for f in Throttle._meta.concrete_fields}
        at = connection.ops.adapt_datetimefield_value(now)
        rows = ", ".join(["(%s, 1, 1, NULL, %s)"] * len(keys))
        sql = (f"INSERT INTO {quote(Throttle._meta.db_table)} ({fields['key']}, {fields['failures']}, "  # noqa: S608 — quoted names, values bound
               f"{fields['pending']}, {fields['blocked_until']}, {fields['updated_at']}) VALUES {rows} "
               f"ON CONFLICT ({fields['key']}) DO NOTHING RETURNING {fields['key']}")
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for key in keys for value in (key, at)])
            return {row[0] for row in cursor.fetchall()}

    def reserve(self, keys, now: datetime, delay_for) -> tuple[str, int]:
        """Admit and count one attempt on every key, or say why not: (ADMITTED|BLOCKED|BUSY, wait).

        `delay_for(key, failures)` gives the block a count of failures earns. The usual case —
        no key has a row (no failures, none pending) — is one INSERT; otherwise the rows are
        locked and decided on, the ones just inserted counting from nothing, in the same
        transaction, which a refusal rolls back whole.
        """
        keys = sorted(set(keys))

        def step(rows):
            wait = max(_seconds_until(row.blocked_until, now) for row in rows)
            if wait or any(row.pending and delay_for(row.key, row.failures) for row in rows):
                transaction.set_rollback(True)  # a refused attempt leaves nothing behind
                return (BLOCKED, wait) if wait else (BUSY, 0)
            for row in rows:
                row.failures += 1
                row.pending += 1
                row.updated_at = now
            self._save(rows)
            return ADMITTED, 0

        for _attempt in range(3):
            with transaction.atomic():
                fresh = self._insert_counted(keys, now)
                if fresh is None:
                    rows = self._locked_rows(keys, now, create=True)
                else:
                    if len(fresh) == len(keys):
                        return ADMITTED, 0
                    rows = self._locked_rows(keys, now, create=False)
                    if len(rows) < len(keys):  # a row was deleted between the insert and the lock
                        rows = None
                        transaction.set_rollback(True)
                    else:
                        for row in rows:
                            if row.key in fresh:  # inserted above, counted: counted again by step
                                row.failures = row.pending = 0
                if rows is not None:
                    return step(rows)
        raise StoreUnavailable()

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
            self._save(rows)

        self._with_rows(keys, now, step)

    def _delete_settled(self, clear, give_back, now: datetime) -> set[str]:
        """Delete the rows this success leaves at nothing, without reading them; return the keys left.

        A row ends at nothing when (as _locked_rows and succeed would see it) its window is over,
        or it has at most this attempt pending and, for a key given back, at most this failure.
        The DELETE's condition is checked on each row as it is deleted, under its lock, so a row
        another attempt changed meanwhile stays for the locked path. One statement where the
        database locks whole (SQLite); else one per key, in key order, as every other step locks.
        """
        keys = sorted([*clear, *give_back])
        if not keys:
            return set()
        quote = connection.ops.quote_name
        column = {f.name: quote(f.column) for f in Throttle._meta.concrete_fields}
        adapt = connection.ops.adapt_datetimefield_value
        table = quote(Throttle._meta.db_table)

        def statement(chosen):
            marks = ", ".join(["%s"] * len(chosen))
            cleared = [k for k in chosen if k in clear]
            settled = f"{column['failures']} <= 1"
            if cleared:
                settled = f"({column['key']} IN ({', '.join(['%s'] * len(cleared))}) OR {settled})"
            sql = (f"DELETE FROM {table} WHERE {column['key']} IN ({marks}) AND ({column['updated_at']} < %s "  # noqa: S608 — quoted names, values bound
                   f"OR (({column['pending']} <= 1 OR {column['updated_at']} < %s) AND {settled}))")
            return sql, [*chosen, adapt(now - WINDOW), adapt(now - LEASE), *cleared]

        groups = [[key] for key in keys] if connection.features.has_select_for_update else [keys]
        deleted = 0
        with connection.cursor() as cursor:
            for group in groups:
                cursor.execute(*statement(group))
                deleted += cursor.rowcount
        return set() if deleted == len(keys) else set(keys)  # which ones are left, the locked read says

    def succeed(self, clear, give_back, now: datetime) -> None:
        """The reserved attempt was right: forget the failures on `clear`, give `give_back` its one."""
        clear, give_back = set(clear), set(give_back)
        with transaction.atomic():
            left = self._delete_settled(clear, give_back - clear, now)
            if not left:
                return
            empty, changed = [], []
            for row in self._locked_rows(sorted(left), now, create=False):
                row.pending = max(row.pending - 1, 0)
                if row.key in clear:
                    row.failures = row.pending  # the attempts still being checked still count
                    row.blocked_until = None
                else:
                    row.failures = max(row.failures - 1, 0)
                if not row.failures and not row.pending:
                    empty.append(row.pk)
                else:
                    changed.append(row)  # its updated_at as read: a success does not extend the window
            self._save(changed)
            if empty:  # the rows are locked: one statement for all
                Throttle.objects.filter(pk__in=empty).delete()


def _aware(value):
    """A time as the ORM reads it: SQLite gives text or a naive UTC time, PostgreSQL an aware one."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


# The statements of the locked path (prepared.written: built once per database kind); quoted
# names, values bound, the SELECT's key list and lock filled in per call.
def _select_rows(quote) -> str:
    names = ", ".join(column(Throttle, quote, name) for name in ("id", "key", "failures", "pending", "blocked_until",
                                                                 "updated_at"))
    key = column(Throttle, quote, "key")
    return (f"SELECT {names} FROM {quote(Throttle._meta.db_table)} "  # noqa: S608
            f"WHERE {key} IN ({{marks}}) ORDER BY {key}{{lock}}")


def _update_row(quote) -> str:
    values = ", ".join(f"{column(Throttle, quote, name)} = %s"
                       for name in ("failures", "pending", "blocked_until", "updated_at"))
    return f"UPDATE {quote(Throttle._meta.db_table)} SET {values} WHERE {column(Throttle, quote, 'id')} = %s"  # noqa: S608


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
