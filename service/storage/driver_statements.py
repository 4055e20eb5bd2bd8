"""Statements compiled once per database and run with the driver's own parameters.

``Connection.execute`` spends some 100 µs of CPU on each call (its statement cache, execution
context and per-parameter processing): more than the database takes for a small INSERT. For
the statements of the hot path, a ``DriverStatement`` compiles its statement once per dialect,
keeps the engine's own processing of each parameter's type (the JSON serialiser, aware UTC
times), and runs it with ``exec_driver_sql``: the pool, the events, the error translation and
the driver's prepared statements stay SQLAlchemy's and the driver's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    keys: tuple[str, ...]  # the parameters' keys, in the statement's order
    names: tuple[str, ...]  # their names in the SQL (for drivers that take them by name)
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool

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
        )

    def parameters(self, values: Mapping[str, Any]) -> tuple | dict:
        processed = [
            values[key] if process is None else process(values[key])
            for key, process in zip(self.keys, self.processors, strict=True)
        ]
        return (
            tuple(processed) if self.positional else dict(zip(self.names, processed, strict=True))
        )


class DriverStatement:
    """A statement of bound parameters (``sa.bindparam``) only, run with a mapping of them."""

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._compiled: dict[Dialect, _Compiled] = {}

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> CursorResult:
        dialect = connection.dialect
        compiled = self._compiled.get(dialect)
        if compiled is None:
            compiled = self._compiled[dialect] = _Compiled.of(self._statement, dialect)
        return connection.exec_driver_sql(compiled.sql, compiled.parameters(values))
