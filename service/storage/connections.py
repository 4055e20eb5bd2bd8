"""What a store needs of the Storage that holds it.

The stores (keys, records, CDS) are made by ``Storage`` and given it; they depend on this
much of it only, so that they need not import the module that imports them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy.engine import Connection


class Connections(Protocol):
    def transaction(self) -> AbstractContextManager[Connection]:
        """A connection in a transaction, committed when the block ends without an error."""
        ...

    def autocommit(self) -> AbstractContextManager[Connection]:
        """A connection for reads."""
        ...

    def write(self) -> AbstractContextManager[Connection]:
        """A connection for one statement that writes and commits on its own."""
        ...

    def scrub_after_erasure(self) -> None:
        """Whatever the database needs after an erasure so the erased rows leave its files."""
        ...
