"""Statements compiled once per database and run on the driver's cursor.

``Connection.execute`` spends some 100 µs of CPU on each call (its statement cache, execution
context and per-parameter processing), and its result another 100-250 µs (column metadata,
row processing): more than the database takes for a small INSERT or a lookup by primary key.
For the statements of the hot path (storing an assessment, reading a record), a
``DriverStatement`` compiles its statement once per dialect, keeps the engine's own processing
of each parameter's and each result column's type (the JSON serialiser, aware UTC times), and
runs it on the connection's DBAPI cursor. What SQLAlchemy does around a cursor call is kept:
the pool (the connection is the ``Connection``'s own), the ``before_cursor_execute`` and
``after_cursor_execute`` events, and the translation of a driver's error by the
``Connection`` itself (``sqlalchemy.exc`` types, ``handle_error`` listeners, a disconnect
invalidating the pool), through the one method SQLAlchemy's own execute uses for it. The
driver's prepared statements stay the driver's.
"""

from __future__ import annotations

import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    keys: tuple[str, ...]  # the parameters' keys, in the statement's order
    names: tuple[str, ...]  # their names in the SQL (for drivers that take them by name)
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool
    row: Callable[[tuple], tuple]  # a driver's row as a named tuple, its values processed

    @classmethod
    def of(cls, statement: ClauseElement, dialect: Dialect) -> _Compiled:
        compiled = statement.compile(dialect=dialect)
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        names = tuple(compiled.positiontup or by_name)
        binds = [by_name[name] for name in names]
        return cls(
            sql=compiled.string,
            keys=tuple(bind.key for bind in binds),
            names=names,
            processors=tuple(
                bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds
            ),
            positional=compiled.positiontup is not None,
            row=_row_maker(statement, dialect),
        )

    def parameters(self, values: Mapping[str, Any]) -> tuple | dict:
        processed = [
            values[key] if process is None else process(values[key])
            for key, process in zip(self.keys, self.processors, strict=True)
        ]
        return (
            tuple(processed) if self.positional else dict(zip(self.names, processed, strict=True))
        )


def _row_maker(statement: ClauseElement, dialect: Dialect) -> Callable[[tuple], tuple]:
    """A result row as a named tuple of the statement's columns (SELECT or RETURNING), each
    value processed as the engine would (a SQLite time made aware, its JSON decoded). The
    records table's types (strings, integers, times, JSON, bytes) read no driver type code;
    one that does (Numeric on psycopg) fails at its first row, never silently."""
    columns = statement.exported_columns
    named = namedtuple("Row", columns.keys())
    processors = [
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    ]
    if not any(processors):
        return named._make
    return lambda values: named._make(
        value if process is None else process(value)
        for value, process in zip(values, processors, strict=True)
    )


class DriverStatement:
    """A statement of bound parameters (``sa.bindparam``) only, run with a mapping of them."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        # Weak: a dialect (one per engine) is not kept alive by a module-level statement.
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[tuple]:
        """Every row the statement returns, as named tuples, read on ``connection``."""
        dialect = connection.dialect
        compiled = self._compiled.get(dialect)
        if compiled is None:
            compiled = self._compiled[dialect] = _Compiled.of(self.statement, dialect)
        parameters = compiled.parameters(values)
        if not _plain(connection):
            # A string statement's result knows no column types: processed here either way.
            result = connection.exec_driver_sql(compiled.sql, parameters)
            return [compiled.row(tuple(row)) for row in result]
        return [compiled.row(row) for row in _fetch_all(connection, compiled.sql, parameters)]

    def first(self, connection: Connection, values: Mapping[str, Any]) -> tuple | None:
        """The one row of a statement that returns at most one (a lookup by primary key)."""
        rows = self.rows(connection, values)
        return rows[0] if rows else None


def _plain(connection: Connection) -> bool:
    """Whether the cursor may be used directly: a connection in autocommit (in a transaction,
    SQLAlchemy must begin it and know of it), with no SQL echo and no ``do_execute`` listener
    (which would run the statement itself). Anything else takes exec_driver_sql: the same
    rows, at SQLAlchemy's cost."""
    return (
        connection._is_autocommit_isolation()
        and not connection._echo
        and not connection.dialect.dispatch.do_execute
    )


def _fetch_all(connection: Connection, sql: str, parameters: tuple | dict) -> list[tuple]:
    """``cursor.execute`` and ``fetchall`` as ``Connection.exec_driver_sql`` makes them, without
    building a result: the same events, and a failure translated by the connection. (Unlike
    exec_driver_sql, an error that is not the driver's is wrapped in StatementError, as
    SQLAlchemy wraps any error before it has an execution context.)"""
    dbapi_connection = connection.connection  # a failure here is translated by the property
    cursor = None
    try:
        cursor = dbapi_connection.cursor()
        for listener in connection.dispatch.before_cursor_execute:
            sql, parameters = listener(connection, cursor, sql, parameters, None, False)
        connection.dialect.do_execute(cursor, sql, parameters, None)
        for listener in connection.dispatch.after_cursor_execute:
            listener(connection, cursor, sql, parameters, None, False)
        fetched = cursor.fetchall()
    except BaseException as error:
        # SQLAlchemy's own handler, with no execution context (as when its execute fails
        # before making one): it closes the cursor, raises the sqlalchemy.exc error, runs the
        # handle_error listeners and, on a disconnect, invalidates this connection and the
        # pool's others.
        connection._handle_dbapi_exception(error, sql, parameters, cursor, None)
        raise  # not reached: the handler always raises
    cursor.close()
    return fetched
