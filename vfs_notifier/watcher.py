"""The kernel's side: inotify watches on directories, and their events turned into changes.

pyinotify does the watching. Each raw event becomes one `Change` saying what happened
to which path; deciding what a change means for the table is the daemon's job.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import select
import struct
import threading
import time
from collections import deque
from typing import NamedTuple, Optional

import pyinotify

# pyinotify logs its own errors and warnings to stderr; ours say the same in context.
logging.getLogger("pyinotify").setLevel(logging.CRITICAL + 1)

MASK = (pyinotify.IN_CLOSE_WRITE | pyinotify.IN_MOVED_TO | pyinotify.IN_MOVED_FROM
        | pyinotify.IN_CREATE | pyinotify.IN_DELETE | pyinotify.IN_DELETE_SELF
        | pyinotify.IN_MOVE_SELF | pyinotify.IN_ONLYDIR | pyinotify.IN_DONT_FOLLOW
        | pyinotify.IN_EXCL_UNLINK | pyinotify.IN_ATTRIB)

_HEADER = struct.Struct("iIII")             # struct inotify_event: wd, mask, cookie, len
_FILE_ATTRIB = pyinotify.IN_ATTRIB | pyinotify.IN_ISDIR
READ_SIZE = 1 << 20
GATHER_SECONDS = 0.002

# Change kinds
FILE_DONE = "file_done"        # a file closed after writing, or moved in: register it
FILE_GONE = "file_gone"        # a file deleted or moved away
DIR_ARRIVED = "dir_arrived"    # a directory created or moved in: watch and walk it
DIR_LEFT = "dir_left"          # a directory deleted or moved away
FILE_LINKED = "file_linked"    # a file created, complete if it is a hard link (ln, rsync --link-dest)
DIR_ATTRIB = "dir_attrib"      # a directory's mode or owner changed: it may be readable now
ROOT_GONE = "root_gone"        # a watched root itself was deleted or moved
ROOT_UNMOUNTED = "root_unmounted"  # the file system holding a watched root was unmounted
OVERFLOW = "overflow"          # the kernel dropped events: reconcile everything


class Change(NamedTuple):
    kind: str
    path: str


class Watcher:
    """Watches directories, one at a time, and reports what changed below them."""

    def __init__(self) -> None:
        self._wm = pyinotify.WatchManager()
        self._roots: dict[int, str] = {}   # wd of each watched root -> its path
        # A thread does nothing but move the kernel's queued events into this deque: the
        # kernel's queue (fs.inotify.max_queued_events) then never fills while the loop is
        # busy writing rows, and a burst costs no overflow and no reconcile.
        self._chunks: deque[bytes] = deque()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stop_read, self._stop_write = os.pipe2(os.O_CLOEXEC)
        self._reader = threading.Thread(target=self._drain_kernel_queue, name="inotify-reader", daemon=True)
        self._reader.start()

    def _drain_kernel_queue(self) -> None:
        poller = select.poll()
        poller.register(self._wm.get_fd(), select.POLLIN)
        poller.register(self._stop_read, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                if fd == self._stop_read:
                    return
                try:
                    self._chunks.append(os.read(self._wm.get_fd(), READ_SIZE))
                except OSError:
                    return
                # A wake-up after every append, never "only if it was empty": the loop may
                # empty the deque between such a check and the append, and then no wake-up
                # would ever come again (a stall the benchmark caught).
                try:
                    os.write(self._wake_write, b"!")
                except BlockingIOError:
                    pass  # the pipe is full: the loop has wake-ups pending already
                # Let events gather: waking per event in a burst (100,000 a second) costs
                # more than it moves. The kernel's queue takes >100 ms to fill at that rate.
                time.sleep(GATHER_SECONDS)

    def fileno(self) -> int:
        """Readable when changes are waiting for read()."""
        return self._wake_read

    def watch(self, directory: str, is_root: bool = False) -> Optional[int]:
        """Watch one directory (not its subdirectories). None, or the errno of the failure.

        Watching an already watched directory again is harmless: the kernel hands back
        the same descriptor and pyinotify records the path it has now.
        """
        mask = MASK
        if is_root or directory in self._roots.values():
            # A root is configuration, not something found in the tree: a root that is a
            # link (/srv/videos -> /mnt/disk1/videos) is watched through it. Links below
            # a root are still never followed.
            mask &= ~pyinotify.IN_DONT_FOLLOW
        try:
            wd = self._wm.add_watch(directory, mask, quiet=True).get(os.path.normpath(directory), -1)
        except UnicodeEncodeError:
            return errno.EILSEQ
        if wd < 0:
            return ctypes.get_errno() or errno.EIO
        if is_root:
            self._roots[wd] = directory
        return None

    def unwatch_tree(self, directory: str) -> None:
        """Stop watching a directory that left and everything below it."""
        # Not rm_watch(rec=True): pyinotify 0.9.6 deletes from its watch table while
        # iterating it there, and raises as soon as the tree has a subdirectory.
        prefix = directory + "/"
        wds = [wd for wd, watch in self._wm.watches.items()
               if watch.path == directory or watch.path.startswith(prefix)]
        for wd in wds:
            self._roots.pop(wd, None)
        if wds:
            self._wm.rm_watch(wds, quiet=True)

    def watch_count(self) -> int:
        return len(self._wm.watches)

    def read(self) -> list[Change]:
        """The changes the kernel has reported since the last call."""
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass
        changes: list[Change] = []
        while self._chunks:
            self._parse(self._chunks.popleft(), changes)
        return changes

    def _parse(self, data: bytes, changes: list[Change]) -> None:
        # pyinotify's own reading (Notifier.read_events/process_events) is not used: it
        # decodes names as strict UTF-8, so one name that is not UTF-8 raises and loses
        # every event read with it, and it formats a debug string for every event, whatever
        # the log level (an eighth of the CPU of a burst). Its WatchManager keeps the watches.
        watches = self._wm.watches
        offset, size = 0, len(data)
        while offset < size:
            wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            name_at = offset + _HEADER.size
            offset = name_at + length
            if mask & _FILE_ATTRIB == pyinotify.IN_ATTRIB:
                continue  # a file's mode or times: nothing to do with its row
            if mask & pyinotify.IN_Q_OVERFLOW:
                changes.append(Change(OVERFLOW, ""))
                continue
            if mask & pyinotify.IN_IGNORED:
                if wd in watches:
                    self._wm.del_watch(wd)
                continue
            watch = watches.get(wd)
            if watch is None:
                continue  # from a watch already removed
            if mask & (pyinotify.IN_DELETE_SELF | pyinotify.IN_MOVE_SELF | pyinotify.IN_UNMOUNT):
                root = self._roots.get(wd)
                if root is not None:  # a subdirectory's parent reports it as DELETE / MOVED_FROM
                    self.unwatch_tree(root)
                    gone = ROOT_UNMOUNTED if mask & pyinotify.IN_UNMOUNT else ROOT_GONE
                    changes.append(Change(gone, root))
                continue
            name = os.fsdecode(data[name_at:name_at + length].rstrip(b"\0"))
            change = _change(mask, watch.path + "/" + name)
            if change is not None:
                if change.kind == DIR_LEFT:
                    self.unwatch_tree(change.path)
                changes.append(change)

    def close(self) -> None:
        os.write(self._stop_write, b"!")
        self._reader.join(timeout=5)
        self._wm.close()
        for fd in (self._wake_read, self._wake_write, self._stop_read, self._stop_write):
            os.close(fd)


def _change(mask: int, path: str) -> Optional[Change]:
    """What one event says happened to `path`."""
    is_dir = bool(mask & pyinotify.IN_ISDIR)
    if mask & pyinotify.IN_CLOSE_WRITE:
        return None if is_dir else Change(FILE_DONE, path)
    if mask & pyinotify.IN_MOVED_TO:
        return Change(DIR_ARRIVED if is_dir else FILE_DONE, path)
    if mask & pyinotify.IN_CREATE:
        # A new directory is walked at once: files may be written into it before its
        # own watch is in place. A new file counts when it is closed, unless it is a
        # hard link, which is complete when it appears and is never closed here.
        return Change(DIR_ARRIVED if is_dir else FILE_LINKED, path)
    if mask & pyinotify.IN_ATTRIB:
        return Change(DIR_ATTRIB, path)
    if mask & (pyinotify.IN_MOVED_FROM | pyinotify.IN_DELETE):
        return Change(DIR_LEFT if is_dir else FILE_GONE, path)
    return None
