"""The embedded store: the `videos` table in an SQLite file (store.py), its leases flock()s on
files beside it (leases.py)."""

from .store import SQLiteStore

__all__ = ["SQLiteStore"]
