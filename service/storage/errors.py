"""What a database failure means: unreachable, schema behind, full or misconfigured.

Every store's methods are wrapped in ``translate_unavailable``, so that a failure that means
"the database cannot be used right now" leaves the storage as a ``StorageUnavailable`` (or the
subclass that says more precisely what is wrong), and a fault in a query stays what it is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import exc

P = ParamSpec("P")
T = TypeVar("T")


class StorageUnavailable(Exception):
    """The database cannot be used right now: unreachable (down, restarting, refusing
    connections, timing out) unless a subclass says more precisely what is wrong."""

    # What readiness and the logs call it.
    reason = "unreachable"


class SchemaBehind(StorageUnavailable):
    """The database's schema is behind the code: a table, a column or a row the migrations make
    is missing. Run the migrations (``flask --app service.wsgi db upgrade``)."""

    reason = "schema behind"


class StorageFull(StorageUnavailable):
    """The database's disk (or SQLite's page limit) is full: nothing more can be written."""

    reason = "full"


class StorageMisconfigured(StorageUnavailable):
    """DATABASE_URL names a database that does not exist, or credentials the server refuses:
    waiting will not help, the configuration must change."""

    reason = "misconfigured"


# Errors that say the database is unreachable or overloaded, as opposed to a fault in a query.
UNAVAILABLE_ERRORS = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)

# PostgreSQL's SQLSTATEs that say what is wrong (its manual, Appendix A).
_SCHEMA_BEHIND_STATES = frozenset(("42P01", "42703"))  # undefined_table, undefined_column
_FULL_STATES = frozenset(("53100",))  # disk_full
# invalid_catalog_name (no such database), invalid_authorization_specification, invalid_password
_MISCONFIGURED_STATES = frozenset(("3D000", "28000", "28P01"))
# A refused connection carries no SQLSTATE (libpq reports the server's FATAL as text).
_MISCONFIGURED_MESSAGE = re.compile(
    r'database ".*" does not exist|role ".*" does not exist|authentication failed'
    r"|no pg_hba\.conf entry|no password supplied|permission denied for database"
)
# SQLite says it in words, with error names since Python 3.11.
_SQLITE_SCHEMA_BEHIND = re.compile(r"no such table|no such column|has no column named")
_SQLITE_FULL = ("SQLITE_FULL",)
_SQLITE_MISCONFIGURED = ("SQLITE_CANTOPEN", "SQLITE_READONLY")


def _first_line(error: BaseException) -> str:
    """The database's own words, first line only (later lines quote the statement). Never a
    parameter: the engine hides them, and these errors are about names, not values."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    # libpq: 'connection failed: connection to server at "h", port 5432 failed: FATAL:  ...'
    return re.sub(r"\s+", " ", text.rpartition("FATAL:")[2] or text).strip()


def diagnose(original: BaseException | None) -> type[StorageUnavailable] | None:
    """What a driver's error says is wrong, when it says more than "unreachable"."""
    if original is None:
        return None
    state = getattr(original, "sqlstate", None)
    if state in _SCHEMA_BEHIND_STATES:
        return SchemaBehind
    if state in _FULL_STATES:
        return StorageFull
    if state in _MISCONFIGURED_STATES:
        return StorageMisconfigured
    name = getattr(original, "sqlite_errorname", None)
    if name is not None:
        if name.startswith(_SQLITE_FULL):
            return StorageFull
        if name.startswith(_SQLITE_MISCONFIGURED):
            return StorageMisconfigured
        if _SQLITE_SCHEMA_BEHIND.search(str(original)):
            return SchemaBehind
        return None
    if state is None and _MISCONFIGURED_MESSAGE.search(str(original)):
        return StorageMisconfigured
    return None


def storage_error(error: exc.SQLAlchemyError) -> StorageUnavailable | None:
    """The StorageUnavailable a database error means; None for a fault in a query (a bug)."""
    kind = diagnose(getattr(error, "orig", None))
    if kind is not None:
        return kind(_first_line(error.orig))
    if isinstance(error, UNAVAILABLE_ERRORS):
        return StorageUnavailable(type(error).__name__)
    return None


def translate_unavailable(function: Callable[P, T]) -> Callable[P, T]:
    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except (*UNAVAILABLE_ERRORS, exc.ProgrammingError) as error:
            translated = storage_error(error)
            if translated is None:
                raise
            raise translated from error

    return wrapper
