"""The one interface every database store offers the registrar (store interface v2).

A store knows its SQL dialect, its driver's errors and how to lock a root in its
database; it knows nothing of files or events. Besides the `videos` table the consumers
share (never altered), it keeps a companion table `vfs_notifier_files`: which version of
which file each row was registered for, so that a restart, a rescan or a standby on
another host knows what was registered without trusting paths alone (a consumer may
delete rows; a file may be renamed or overwritten).

Reads are streamed (generators): finish or close one before the next call on the same
store, since a MySQL connection carries one result at a time; both backends raise
RuntimeError when this is broken, so a registrar tested on SQLite is right on MySQL too.

Every write carries a fence (the leases of the roots it touches, with their tokens) and
commits only if each lease is still this instance's, checked in the same transaction: a
holder that lost its lease commits nothing, whatever path produced the write.

Every failure reaches the registrar as one of four exceptions: the store is unavailable
(retry later, whatever the cause), it refused particular rows (a data error), a lease was
lost (LeaseLost), or the database refused the write for another's sake (WriteConflict).
Which backend to use is chosen in store_factory, which no backend imports.
"""

from __future__ import annotations

import hashlib
import os
import socket
from typing import Callable, Iterable, Iterator, Mapping, NamedTuple, Optional, Protocol, Sequence, TypeVar

TABLE = "videos"
FILES_TABLE = "vfs_notifier_files"
LEASES_TABLE = "vfs_notifier_leases"


class Version(NamedTuple):
    """What tells one version of a file from another: a new inode, or new size and mtime."""
    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> "Version":
        """The version a stat result describes."""
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


# Companion entries in columns, one batch of a restart's read: video ids, paths, devices,
# inodes, sizes, modification times, the same index in each for one entry. No object per
# entry: at a million files, a Remembered each cost more than the reading.
Columns = tuple[Sequence[int], Sequence[str], Sequence[int], Sequence[int], Sequence[int], Sequence[int]]


class Remembered(NamedTuple):
    """A companion entry: the row `video_id` was registered for this version of `path`."""
    video_id: int
    path: str
    version: Version


class NewVideo(NamedTuple):
    """A row to insert, with the version of the file it stands for."""
    main_dir: str
    path: str
    url: str
    version: Version


class VideoRow(NamedTuple):
    """A `videos` row as it is (consumers may have changed or nulled any column)."""
    id: int
    main_dir: Optional[str]
    path: str
    status: Optional[int]
    created_date: Optional[str]
    url: Optional[str]


class Lease(NamedTuple):
    """The answer to "may this instance write this root": a token when it may (> 0, grown with
    every takeover, checked by every write), else 0 and who holds the root instead."""
    token: int
    holder: str


# root path -> the token of this instance's lease on it: the roots a write touches. Every
# write carries one and commits only if each lease is still ours, in the same transaction.
Fence = Mapping[str, int]


class StoreUnavailable(Exception):
    """The database cannot be used now; str() says why, without secrets."""


class LeaseLost(Exception):
    """A write's fence failed: another instance holds these roots now (or this one's lease
    lapsed). Nothing of the write was committed; the connection is still good."""

    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = tuple(roots)
        super().__init__("lost the lease on " + ", ".join(self.roots))


class WriteConflict(Exception):
    """The database refused a write for another transaction's sake (a Galera certification
    failure or deadlock, 1213; a lock wait timeout, 1205). Nothing was committed and the
    connection is still good: ask the leases again, then write again or stand by."""


class RowsRejected(Exception):
    """The database refused the rows themselves (a data error), not the connection."""


class Store(Protocol):
    description: str  # where the rows go, for logs and status: never holds a password
    # A write's commit (an insert: the whole write) may still be under way when the call
    # returns (MySQL: on a thread of its own); the next call waits for it and raises
    # StoreUnavailable if it failed.
    busy: bool

    def sync(self) -> None:
        """Wait for the write under way, if any; StoreUnavailable if it failed, RowsRejected
        if the database refused an insert's rows."""

    def open(self) -> None:
        """Connect; create `videos` and the companion tables when missing. Claims survive it."""

    def remembered(self) -> Iterator[Remembered]:
        """Every companion entry, streamed."""

    def remembered_columns(self) -> Iterator[Columns]:
        """Every companion entry, streamed in batches of columns (what a restart reads)."""

    def unremembered(self) -> Iterator[tuple[int, str]]:
        """(id, des_video_path) of the videos rows with no companion entry (rows of 1.0)."""

    def remember(self, entries: Sequence[Remembered], fence: Fence) -> None:
        """Upsert companion entries by video_id, dropping any other entry of the same path."""

    def insert(self, videos: Sequence[NewVideo], fence: Fence, replaces: Optional[Sequence[str]] = None) -> list[int]:
        """Insert rows and their companion entries in one transaction; their ids, in order.
        The older companion entries of the same paths go: of `replaces` only, when given (the
        caller knows which paths had one: a row a consumer deleted), else of every path."""

    def start_insert(self, videos: Sequence[NewVideo], fence: Fence,
                     replaces: Optional[Sequence[str]] = None) -> Callable[[], list[int]]:
        """insert(), which may still be under way when the call returns (MySQL: the whole
        transaction runs on the store's thread, so that the loop judges the next files while
        the server writes these). The next sync() meets its end: RowsRejected or
        StoreUnavailable if it failed; once sync() returned, the function returned here gives
        the ids."""

    def existing(self, ids: Sequence[int]) -> set[int]:
        """Which of these video ids still have a row (consumers delete rows)."""

    def resignal(self, changes: Sequence[Remembered], fence: Fence) -> None:
        """Files overwritten in place: status=1 and created_date=now, companion version updated."""

    def move(self, old: str, new: str, main_dir: str, old_url: str, new_url: str, fence: Fence) -> int:
        """A file (path == old) or a directory (path below old + "/") renamed: rows keep their
        ids and status; path, URL and main_dir change in a few statements. Rows moved."""

    def withdraw(self, ids: Sequence[int], fence: Fence) -> int:
        """Delete these rows (if still there) and their companion entries; rows deleted."""

    def forget(self, ids: Sequence[int], fence: Fence) -> None:
        """Drop these companion entries only; the rows stay."""

    def remembered_below(self, directory: str, after_id: int = 0, limit: int = 0) -> Iterator[Remembered]:
        """The companion entries of paths below `directory` (exact prefix), streamed; with
        `limit`, one page of them: video ids above `after_id`, in id order."""

    def videos(self) -> Iterator[VideoRow]:
        """Every videos row, by id, streamed."""

    def lease(self, root: str, token: int, seconds: float) -> Lease:
        """Take or renew this instance's lease on `root` for `seconds`: renewed when `token`
        is still ours, else taken when free or lapsed (with a new, greater token), else the
        holder's name. StoreUnavailable when the database cannot say."""

    def release(self, root: str, token: int) -> None:
        """Give the lease up at once (a clean stop): the next instance need not wait it out."""

    def close(self) -> None:
        """Drop every connection; leases are released by release(), or lapse."""


T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    """Slices of at most `size` items: a statement's placeholders are limited."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def holder() -> str:
    """How a lease names its holder to a standby instance."""
    return f"{socket.gethostname()} pid {os.getpid()}"


def root_digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def last_per_key(entries: Sequence[Remembered]) -> list[Remembered]:
    """One entry per video id and per path, the later one winning, in their order: the
    companion table holds one version per row and one row per path."""
    by_path: dict[str, Remembered] = {}
    for entry in entries:
        by_path[entry.path] = entry
    by_id: dict[int, Remembered] = {}
    for entry in by_path.values():
        by_id.pop(entry.video_id, None)
        by_id[entry.video_id] = entry
    return list(by_id.values())
