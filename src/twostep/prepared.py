"""Statements compiled once per database connection, then run again: the hot reads and inserts.

Building a statement costs the ORM several times what SQLite takes to run it (the user and
account of a request: 1.1 ms through the ORM, 0.1 ms once compiled). The statements here are the
ORM's own — compiled by it from a queryset or a model — kept per connection and run with the
next values; rows come back as the ORM turns them into objects.
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

from django.db import connections
from django.db.models.query import get_related_populators
from django.db.models.sql import InsertQuery
from django.db.transaction import TransactionManagementError


class _Compiled(NamedTuple):
    """A prepared query as compiled for one connection, and what turns its rows into objects."""

    sql: str
    params: list  # the statement's parameters, the key's places holding None
    slots: tuple[int, ...]  # where the key goes among them
    compiler: object
    converters: dict
    model: type
    names: list[str] | None  # the model's attribute names, in the order of a row's columns for it
    fields: slice | None  # where those columns are in a row (None: a values_list query)
    populators: list  # select_related's objects
    locks: bool  # SELECT … FOR UPDATE


class PreparedQuery:
    """A query through the ORM, compiled once per database connection, then run with another key.

    `make(key)` builds the queryset for one key: an integer, as a primary key or a foreign key
    takes it, or with `text=True` a string (a login). It is compiled twice, for two sample keys:
    the SQL must be the same, and the parameters that differ are the key's places — the others
    (a kind, a flag) are kept as they are. Rows are turned into objects as the ORM would: the
    database's converters, `from_db`, and the related objects of `select_related` filled in; a
    `values_list` query gives its rows as tuples. A query that locks (`select_for_update`) runs
    in a transaction only, as the ORM's does.
    """

    _SAMPLES = (7_000_001, 7_000_002)  # two keys no parameter of a query equals by chance

    def __init__(self, make, *, text: bool = False):
        self._make, self._text = make, text
        self._samples = tuple(str(sample) for sample in self._SAMPLES) if text else self._SAMPLES
        self._compiled = weakref.WeakKeyDictionary()  # one per connection (twostep/turn_connections.py)

    def _compile(self, connection) -> _Compiled:
        compilers = [self._make(key).query.get_compiler(connection=connection) for key in self._samples]
        (sql, params), (other_sql, other_params) = (compiler.as_sql() for compiler in compilers)
        params, other_params = list(params), list(other_params)
        slots = tuple(i for i, (a, b) in enumerate(zip(params, other_params, strict=False)) if a != b)
        if (sql != other_sql or len(params) != len(other_params) or not slots
                or any((params[i], other_params[i]) != self._samples for i in slots)):
            raise ValueError(f"a prepared query takes its key as a parameter, the same SQL for every key: {sql!r}")
        compiler = compilers[0]
        select, info = compiler.select, compiler.klass_info
        if info is not None:  # model instances
            first, last = info["select_fields"][0], info["select_fields"][-1] + 1
            names = [column[0].target.attname for column in select[first:last]]
            fields = slice(first, last)
            populators = get_related_populators(info, select, connection.alias)
        else:  # values_list
            names, fields, populators = None, None, []
        compiled = _Compiled(
            sql=sql,
            params=[None if i in slots else value for i, value in enumerate(params)],
            slots=slots,
            compiler=compiler,
            converters=compiler.get_converters([column[0] for column in select[:compiler.col_count]]),
            model=compiler.query.model,
            names=names,
            fields=fields,
            populators=populators,
            locks=compiler.query.select_for_update,
        )
        self._compiled[connection] = compiled
        return compiled

    def _rows(self, key, using: str) -> tuple[_Compiled, list]:
        connection = connections[using]
        query = self._compiled.get(connection) or self._compile(connection)
        if query.locks and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(query.params)
        # Junk raises as the ORM's would ("expected a number").
        value = str(key) if self._text else query.model._meta.pk.get_db_prep_value(key, connection)
        for slot in query.slots:
            params[slot] = value
        with connection.cursor() as cursor:
            cursor.execute(query.sql, params)
            rows = cursor.fetchall()
        if query.converters:
            rows = list(query.compiler.apply_converters(rows, query.converters))
        return query, rows

    def _object(self, query: _Compiled, row, using: str):
        found = query.model.from_db(using, query.names, row[query.fields])
        for populator in query.populators:
            populator.populate(row, found)
        return found

    def first(self, key, using: str = "default"):
        """Return the first object the query finds for `key`, or None."""
        if key is None:
            return None
        query, rows = self._rows(key, using)
        return self._object(query, rows[0], using) if rows else None

    def all(self, key, using: str = "default") -> list:
        """Return the objects the query finds for `key`."""
        query, rows = self._rows(key, using)
        return [self._object(query, row, using) for row in rows]

    def values(self, key, using: str = "default") -> list[tuple]:
        """Return the rows of a `values_list` query for `key`, as tuples."""
        return [tuple(row) for row in self._rows(key, using)[1]]


class PreparedInsert:
    """`Model.objects.create(**values)` with its INSERT compiled once per connection.

    The same statement and values as the ORM's (each field's `pre_save` and `get_db_prep_save`, the
    new key read back by RETURNING), for a model of one table whose `save` is Django's own and that
    no `pre_save`/`post_save` receiver listens to: those are not called.
    """

    def __init__(self, model):
        self._model = model
        self._compiled = weakref.WeakKeyDictionary()

    def _compile(self, connection):
        meta = self._model._meta
        fields = [field for field in meta.local_concrete_fields if field is not meta.auto_field]
        query = InsertQuery(self._model)
        query.insert_values(fields, [self._model()])
        compiler = query.get_compiler(connection=connection)
        returns = connection.features.can_return_columns_from_insert
        compiler.returning_fields = [meta.pk] if returns else None
        [(sql, _params)] = compiler.as_sql()
        self._compiled[connection] = compiled = (sql, fields, compiler, returns)
        return compiled

    def create(self, using: str = "default", **values):
        """Insert a new row with `values` (the rest as the model's defaults); return its object."""
        connection = connections[using]
        sql, fields, compiler, returns = self._compiled.get(connection) or self._compile(connection)
        row = self._model(**values)
        params = [compiler.prepare_value(field, compiler.pre_save_val(field, row)) for field in fields]
        meta = self._model._meta
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if returns:
                key = cursor.fetchone()[0]
            else:
                key = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
        row.pk = key
        row._state.adding, row._state.db = False, using
        return row


_WRITTEN: dict = {}


def written(connection, build):
    """Return `build(quote)` — a statement written by hand, or several, their names quoted — built
    once per database kind. `build` is a module-level function: it is the cache's key."""
    key = (build, connection.vendor)
    sql = _WRITTEN.get(key)
    if sql is None:
        sql = _WRITTEN[key] = build(connection.ops.quote_name)
    return sql


def change(build, params, using: str = "default") -> int:
    """Run the hand-written statement `build` gives (see `written`) with `params`; return the rows it changed."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(written(connection, build), params)
        return cursor.rowcount


def column(model, quote, name: str) -> str:
    """The quoted column of a model's field."""
    return quote(model._meta.get_field(name).column)
