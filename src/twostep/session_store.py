"""Sessions in the database (Django's table), written once per request.

Django's database store writes a new session key at once when it changes (a sign-in, each step
of one): a SELECT to see whether the random key is taken, an INSERT, a SELECT and a DELETE of the
old row, and then an UPDATE of the new row at the end of the request — five statements in three
transactions. Here a new key is chosen at once (the code that follows may need it: the sessions
list notes it) and written at the end of the request in one transaction: the new row inserted,
the old one deleted. What that keeps:

- The key changes at every sign-in step (no fixation): the old key's row is deleted in the same
  transaction that creates the new one, and until then it holds only the data it had before the
  request — never the signed-in state, which exists under the new key only.
- A request that fails (500, nothing saved) leaves the old session as it was; Django's store
  would have deleted it and left the new one behind without its cookie.
- What must exist exactly when the session does (the sessions list's row of a sign-in, the
  settling of a right password's throttle attempt) is written in the same transaction
  (`write_with`), so a sign-in step takes SQLite's write lock once at its end, not twice, and a
  request that fails leaves neither.
- A new key is 160 random bits, written as 32 characters of base32 in lower case (letters and
  digits, as Django's keys): one read of the system's random source, where Django's key costs
  one per character. The primary key refuses a taken one, so it is not looked up first. Should
  it ever be taken, the request fails cleanly (Django's "session interrupted", 400) rather than
  sharing a session.
"""

from __future__ import annotations

import base64
import secrets
from types import SimpleNamespace

from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from .prepared import written


class SessionStore(DatabaseSessionStore):
    def __init__(self, session_key=None):
        super().__init__(session_key)
        self._unsaved = False  # the current key has no row yet
        self._replaces = None  # the key whose row the next save deletes
        self._with = []  # writes that go with the new key's row (write_with)
        self._written = None  # the data as this request last wrote it (serialized), if it did

    def _get_new_session_key(self):
        # Unique by the primary key: create() tries another on the INSERT's conflict.
        return new_session_key()

    def _get_session_from_db(self):
        """Read the session's data by its key, unexpired, in one plain SELECT.

        The same statement as Django's (`objects.get(session_key=…, expire_date__gt=now)`),
        without building it through the ORM on every request: it runs at the start of almost
        every request, and building it cost more than running it.
        """
        key = self.session_key  # None unless it passed Django's validation
        if key is None:
            return None
        connection = connections[router.db_for_read(self.model)]
        with connection.cursor() as cursor:
            cursor.execute(written(connection, _statements).select,
                           [key, connection.ops.adapt_datetimefield_value(timezone.now())])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return SimpleNamespace(session_data=row[0])

    def cycle_key(self):
        """Give the session a new key now; write it, and delete the old row, when it is saved."""
        data = self._session
        if self.session_key and not self._unsaved:
            self._replaces = self.session_key
        self._session_key = self._get_new_session_key()
        self._unsaved = True
        self._session_cache = data
        self.modified = True

    def write_with(self, write) -> None:
        """Call `write(session_key)` in the transaction that writes this session's new key.

        Nothing is written if the session is not saved (a failed request, a sign-out before the
        end of the request). Without a new key pending the write happens at once.
        """
        if not self._unsaved:
            write(self.session_key)
            return
        self._with.append(write)

    def save(self, must_create=False):
        """Write the session: a new key's row inserted (the row it replaces deleted), else updated.

        Plain statements, as the ORM would write them (`force_insert` / `force_update`), built
        once: a session is written at every step of a sign-in. A session written already in this
        request (a sign-in writes it with the proof it spent) is not written again unless its
        data changed since.
        """
        if self.session_key is None:
            return self.create()
        creating = must_create or self._unsaved
        data = self._get_session(no_load=creating)
        written_data = self.serializer().dumps(data)
        if not creating and written_data == self._written:
            return
        connection = connections[router.db_for_write(self.model)]
        row = [self.encode(data), connection.ops.adapt_datetimefield_value(self.get_expiry_date()),
               self.session_key]
        try:
            if not creating:
                with connection.cursor() as cursor:
                    cursor.execute(written(connection, _statements).update, row)
                    if cursor.rowcount != 1:  # deleted meanwhile (signed out elsewhere)
                        raise UpdateError
                self._written = written_data
                return
            if self._replaces or self._with or connection.in_atomic_block:
                with transaction.atomic(using=connection.alias):
                    with connection.cursor() as cursor:
                        cursor.execute(written(connection, _statements).insert, row)
                        if self._replaces:
                            cursor.execute(written(connection, _statements).delete, [self._replaces])
                    for write in self._with:
                        write(self.session_key)
            else:  # one INSERT, nothing to delete: no transaction of its own (two round trips fewer)
                with connection.cursor() as cursor:
                    cursor.execute(written(connection, _statements).insert, row)
        except IntegrityError:
            if must_create:
                raise CreateError from None
            raise UpdateError from None  # the middleware answers "session interrupted"
        self._unsaved = False
        self._replaces = None
        self._with = []
        self._written = written_data

    def delete(self, session_key=None):
        """Delete a session's row in one statement (and the row a pending new key replaces)."""
        if session_key is None:
            if self.session_key is None:
                return
            keys = [self.session_key, *([self._replaces] if self._replaces else [])]
            self._unsaved = False
            self._replaces = None
            self._with = []
            self._written = None
        else:
            keys = [session_key]
        self.model.objects.filter(session_key__in=keys).delete()


KEY_BYTES = 20  # 160 bits: 32 characters of base32, no padding


def new_session_key() -> str:
    """Return a new session key: 160 random bits as 32 characters from [a-z2-7]."""
    return base64.b32encode(secrets.token_bytes(KEY_BYTES)).decode("ascii").lower()


def _statements(quote) -> SimpleNamespace:
    """The session table's statements (prepared.written: built once per database kind); quoted names, values bound."""
    meta = Session._meta
    table, key = quote(meta.db_table), quote(meta.pk.column)
    data, expires = (quote(meta.get_field(name).column) for name in ("session_data", "expire_date"))
    return SimpleNamespace(
        select=f"SELECT {data} FROM {table} WHERE {key} = %s AND {expires} > %s",  # noqa: S608
        insert=f"INSERT INTO {table} ({data}, {expires}, {key}) VALUES (%s, %s, %s)",  # noqa: S608
        update=f"UPDATE {table} SET {data} = %s, {expires} = %s WHERE {key} = %s",  # noqa: S608
        delete=f"DELETE FROM {table} WHERE {key} = %s",  # noqa: S608
    )
