"""The kernel's watches: one inotify watch per directory, added and removed one at a time.

pyinotify's WatchManager adds and removes the watches; a WatchIndex says which directory
each one stands for. Roots are remembered apart (only a root reports its own deletion or
unmount); directories the kernel refused for lack of watches are kept for the service,
which covers them by walking. Failures are return values, never raised upward.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from typing import Optional

import pyinotify

from .watch_index import WatchIndex

# pyinotify logs its own errors and warnings to stderr; ours say the same in context.
logging.getLogger("pyinotify").setLevel(logging.CRITICAL + 1)

MASK = (pyinotify.IN_CLOSE_WRITE | pyinotify.IN_MOVED_TO | pyinotify.IN_MOVED_FROM
        | pyinotify.IN_CREATE | pyinotify.IN_DELETE | pyinotify.IN_DELETE_SELF
        | pyinotify.IN_MOVE_SELF | pyinotify.IN_ONLYDIR | pyinotify.IN_DONT_FOLLOW
        | pyinotify.IN_EXCL_UNLINK | pyinotify.IN_ATTRIB)


class Watches:
    """The watched directories: which watch descriptor stands for which path."""

    def __init__(self) -> None:
        self.manager = pyinotify.WatchManager()
        self.index = WatchIndex()
        self.roots: dict[int, str] = {}   # wd of each watched root -> its path
        # Directories the kernel refused a watch for lack of watches (ENOSPC): the service
        # covers them by walking; `limit_reached` stays true once it happened.
        self.refused: set[str] = set()
        self.limit_reached = False

    def fd(self) -> int:
        """The inotify file descriptor the kernel queues these watches' events on."""
        return self.manager.get_fd()

    def __len__(self) -> int:
        return len(self.index)

    def watch(self, directory: str, is_root: bool = False) -> Optional[int]:
        """Watch one directory (not its subdirectories). None, or the errno of the failure.

        Watching an already watched directory again is harmless: the kernel hands back
        the same descriptor and the index records the path it has now. ENOSPC (the watch
        limit) also puts the directory in `refused` and sets `limit_reached`.
        """
        directory = os.path.normpath(directory)
        mask = MASK
        if is_root or directory in self.roots.values():
            # A root is configuration, not something found in the tree: a root that is a
            # link (/srv/videos -> /mnt/disk1/videos) is watched through it. Links below
            # a root are still never followed.
            mask &= ~pyinotify.IN_DONT_FOLLOW
        try:
            wd = self.manager.add_watch(directory, mask, quiet=True).get(directory, -1)
        except UnicodeEncodeError:
            return errno.EILSEQ
        if wd < 0:
            problem = ctypes.get_errno() or errno.EIO
            if problem == errno.ENOSPC:
                self.refused.add(directory)
                self.limit_reached = True
            return problem
        if self.refused:
            self.refused.discard(directory)
        previous = self.index.wd(directory)
        self.index.add(directory, wd)
        if previous is not None and previous != wd:
            # Another directory is at this path now; the old one's watch stands for nothing.
            self.roots.pop(previous, None)
            self.manager.rm_watch(previous, quiet=True)
        if is_root:
            self.roots[wd] = directory
        return None

    def unwatch_tree(self, directory: str) -> None:
        """Stop watching a directory that left and everything below it (linear in that subtree)."""
        # Not rm_watch(rec=True): pyinotify 0.9.6 deletes from its watch table while
        # iterating it there, and it scans every watch for each one removed.
        directory = os.path.normpath(directory)
        wds = self.index.remove_tree(directory)
        if self.roots:
            for wd in wds:
                self.roots.pop(wd, None)
        if self.refused:   # changed in place: the service may hold this set
            self.refused.difference_update([d for d in self.refused if _is_within(d, directory)])
        if wds:
            self.manager.rm_watch(wds, quiet=True)

    def move_tree(self, old: str, new: str) -> None:
        """A watched directory was renamed: its watches (and pyinotify's records) follow it."""
        self.unwatch_tree(new)             # a rename over an empty directory replaces it
        watches = self.manager.watches
        for wd, path in self.index.move_tree(old, new):
            watch = watches.get(wd)
            if watch is not None:
                watch.path = path
        moved = [d for d in self.refused if _is_within(d, old)]
        self.refused.difference_update(moved)
        self.refused.update(new + d[len(old):] for d in moved)

    def forget(self, wd: int) -> None:
        """The kernel removed watch `wd` itself (IN_IGNORED: its directory is gone)."""
        self.index.drop(wd)
        self.roots.pop(wd, None)
        if wd in self.manager.watches:
            self.manager.del_watch(wd)

    def close(self) -> None:
        self.manager.close()


def _is_within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")
