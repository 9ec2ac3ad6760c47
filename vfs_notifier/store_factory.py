"""Which store the settings ask for. Kept apart from store.py so that the backends, which
import the interface, never import the module that imports them."""

from __future__ import annotations

from .settings import Database
from .store import Store


def open_store(database: Database) -> Store:
    """The store the settings ask for, not yet connected (MySQL when a host or socket is set)."""
    if database.uses_mysql:
        from .store_mysql import MySQLStore
        return MySQLStore(database)
    from .store_sqlite import SQLiteStore
    return SQLiteStore(database.sqlite_path)
