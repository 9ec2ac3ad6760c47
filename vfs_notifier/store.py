"""The one interface every database store offers the registrar, and the choice between them.

A store knows its SQL dialect and its driver's errors; it knows nothing of files or
events. Every failure reaches the registrar as one of two exceptions: the store is
unavailable (retry later, whatever the cause), or it refused particular rows.
"""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple, Optional, Protocol, Sequence

from .rows import Row
from .settings import Database

TABLE = "videos"


class VideoRow(NamedTuple):
    """One row of `videos` as it is (for `vfs-notifier list`); columns the table allows to be
    NULL may be None. created_date is text, 'YYYY-MM-DD HH:MM:SS', as both backends hold it."""

    id: int
    main_dir: Optional[str]
    path: str
    status: Optional[int]
    created_date: Optional[str]
    url: Optional[str]


class StoreUnavailable(Exception):
    """The database cannot be used now; str() says why, without secrets."""


class RowsRejected(Exception):
    """The database refused the rows themselves (a data error), not the connection."""


class Store(Protocol):
    description: str  # where the rows go, for logs and status: never holds a password

    def open(self) -> None:
        """Connect and make sure the table exists (creating it when missing)."""

    def registered_paths(self) -> Iterable[str]:
        """Every des_video_path in the table, streamed."""

    def paths_below(self, directory: str) -> Iterable[str]:
        """The des_video_path of every row below `directory`, exactly (case counts), streamed."""

    def insert(self, rows: Sequence[Row]) -> None:
        """Insert all rows in one transaction, or none."""

    def delete(self, paths: Sequence[str]) -> int:
        """Delete the rows of these exact paths; returns how many rows went."""

    def videos(self) -> Iterator[VideoRow]:
        """Every row of `videos`, by id, streamed."""

    def close(self) -> None:
        """Drop the connection; open() may be called again."""


def open_store(database: Database) -> Store:
    """The store the settings ask for, not yet connected."""
    if database.uses_mysql:
        from .store_mysql import MySQLStore
        return MySQLStore(database)
    from .store_sqlite import SQLiteStore
    return SQLiteStore(database.sqlite_path)


def chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
