"""The kernel's side: inotify watches on directories, and their events turned into changes.

pyinotify does the watching. Each raw event becomes one `Change` saying what happened
to which path; deciding what a change means for the table is the daemon's job.
"""

from __future__ import annotations

import array
import ctypes
import errno
import fcntl
import logging
import os
import struct
import termios
from typing import NamedTuple, Optional

import pyinotify

# pyinotify logs its own errors and warnings to stderr; ours say the same in context.
logging.getLogger("pyinotify").setLevel(logging.CRITICAL + 1)

MASK = (pyinotify.IN_CLOSE_WRITE | pyinotify.IN_MOVED_TO | pyinotify.IN_MOVED_FROM
        | pyinotify.IN_CREATE | pyinotify.IN_DELETE | pyinotify.IN_DELETE_SELF
        | pyinotify.IN_MOVE_SELF | pyinotify.IN_ONLYDIR | pyinotify.IN_DONT_FOLLOW
        | pyinotify.IN_EXCL_UNLINK)

# Change kinds
FILE_DONE = "file_done"        # a file closed after writing, or moved in: register it
FILE_GONE = "file_gone"        # a file deleted or moved away
DIR_ARRIVED = "dir_arrived"    # a directory created or moved in: watch and walk it
DIR_LEFT = "dir_left"          # a directory deleted or moved away
ROOT_GONE = "root_gone"        # a watched root itself was deleted or moved
OVERFLOW = "overflow"          # the kernel dropped events: reconcile everything


class Change(NamedTuple):
    kind: str
    path: str


class _Notifier(pyinotify.Notifier):
    def read_events(self) -> None:
        # pyinotify 0.9.6 decodes names with strict UTF-8 (bname.decode()): one file name
        # that is not UTF-8 raises there and every event read with it is lost. This is the
        # same loop, decoding as the os module does (surrogateescape), so such a name
        # arrives intact and is skipped, with a warning, where rows are made.
        size = array.array("i", [0])
        if fcntl.ioctl(self._fd, termios.FIONREAD, size, 1) == -1 or size[0] <= 0:
            return
        data = os.read(self._fd, size[0])
        offset = 0
        while offset < len(data):
            wd, mask, cookie, length = struct.unpack_from("iIII", data, offset)
            name = os.fsdecode(data[offset + 16:offset + 16 + length].rstrip(b"\0"))
            self._eventq.append(pyinotify._RawEvent(wd, mask, cookie, name))
            offset += 16 + length


class Watcher:
    """Watches directories, one at a time, and reports what changed below them."""

    def __init__(self) -> None:
        self._wm = pyinotify.WatchManager()
        self._events: list[pyinotify.Event] = []
        self._notifier = _Notifier(self._wm, default_proc_fun=self._events.append)
        self._roots: dict[int, str] = {}   # wd of each watched root -> its path

    def fileno(self) -> int:
        return self._wm.get_fd()

    def watch(self, directory: str, is_root: bool = False) -> Optional[int]:
        """Watch one directory (not its subdirectories). None, or the errno of the failure.

        Watching an already watched directory again is harmless: the kernel hands back
        the same descriptor and pyinotify records the path it has now.
        """
        try:
            wd = self._wm.add_watch(directory, MASK, quiet=True).get(os.path.normpath(directory), -1)
        except UnicodeEncodeError:
            return errno.EILSEQ
        if wd < 0:
            return ctypes.get_errno() or errno.EIO
        if is_root:
            self._roots[wd] = directory
        return None

    def unwatch_tree(self, directory: str) -> None:
        """Stop watching a directory that left and everything below it."""
        wd = self._wm.get_wd(directory)
        if wd is not None:
            self._roots.pop(wd, None)
            self._wm.rm_watch(wd, rec=True, quiet=True)

    def watch_count(self) -> int:
        return len(self._wm.watches)

    def read(self) -> list[Change]:
        """Read what the kernel has queued (call when fileno() is readable)."""
        self._notifier.read_events()
        self._notifier.process_events()
        events, self._events[:] = list(self._events), []
        changes = []
        for event in events:
            change = self._change(event)
            if change is not None:
                changes.append(change)
        return changes

    def _change(self, event: pyinotify.Event) -> Optional[Change]:
        mask = event.mask
        if mask & pyinotify.IN_Q_OVERFLOW:
            return Change(OVERFLOW, "")
        is_dir = bool(mask & pyinotify.IN_ISDIR)
        if mask & (pyinotify.IN_DELETE_SELF | pyinotify.IN_MOVE_SELF):
            root = self._roots.get(event.wd)
            if root is None:
                return None  # a subdirectory: its parent's DELETE / MOVED_FROM says it all
            self.unwatch_tree(root)
            return Change(ROOT_GONE, root)
        path = event.pathname
        if mask & pyinotify.IN_CLOSE_WRITE:
            return None if is_dir else Change(FILE_DONE, path)
        if mask & pyinotify.IN_MOVED_TO:
            return Change(DIR_ARRIVED if is_dir else FILE_DONE, path)
        if mask & pyinotify.IN_CREATE:
            # A new file is registered when closed; a new directory is walked now, since
            # files may be written into it before its own watch is in place.
            return Change(DIR_ARRIVED, path) if is_dir else None
        if mask & (pyinotify.IN_MOVED_FROM | pyinotify.IN_DELETE):
            if is_dir:
                self.unwatch_tree(path)
                return Change(DIR_LEFT, path)
            return Change(FILE_GONE, path)
        return None

    def close(self) -> None:
        self._notifier.stop()
