"""Leases in SQLite: a flock() on a file beside the database, one file per root. The kernel
drops a flock when its holder dies, and only processes of this host share the file, so the
lock alone decides who writes (the token is always 1). The file holds its holder's name, for
people: the lock is the lease."""

from __future__ import annotations

import fcntl
import os

from ..store import Lease, StoreUnavailable, holder, root_digest


class Claims:
    """The roots this store holds: one open descriptor per root, holding its file's flock."""

    def __init__(self, database_path: str) -> None:
        self._database_path = database_path
        self._held: dict[str, int] = {}  # root -> the descriptor holding its flock

    def path(self, root: str) -> str:
        """The lock file of `root`, beside the database."""
        return f"{self._database_path}.claim-{root_digest(root)[:16]}"

    def take(self, root: str) -> Lease:
        """Keep or take the lock of `root`; Lease(0, who holds it) when another process does."""
        if self.holds(root):
            return Lease(1, "")
        self.release(root)
        path = self.path(root)
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise StoreUnavailable(f"{path}: {err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 255, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            return Lease(0, text or "another instance")
        except OSError as err:
            os.close(fd)
            raise StoreUnavailable(f"{path}: {err}") from None
        self._held[root] = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (holder() + "\n").encode(), 0)
        except OSError:
            # The holder's name is for people; the flock is the lease, kept above before
            # this write, so that a full disk cannot cost it (docs/HISTORY.md).
            pass
        return Lease(1, "")

    def holds(self, root: str) -> bool:
        """Whether this store still holds the lock of `root`, on the file that is there now."""
        fd = self._held.get(root)
        if fd is None:
            return False
        try:
            # Someone removing the lock file would let the next instance lock a new one.
            mine, there = os.fstat(fd), os.stat(self.path(root))
            return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)
        except OSError:
            return False

    def release(self, root: str) -> None:
        fd = self._held.pop(root, None)
        if fd is None:
            return
        # The file stays: unlinking a lock file lets two later instances lock different files.
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)  # closing the last descriptor drops the flock

    def release_all(self) -> None:
        for root in list(self._held):
            self.release(root)
