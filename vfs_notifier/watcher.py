"""The kernel's side: inotify watches on directories, and their events turned into changes.

pyinotify's WatchManager adds and removes the watches; a WatchIndex says which directory
each one stands for. Each raw event becomes at most one `Change` saying what happened to
which path (a rename's two events become one change); deciding what a change means for
the table is the gate's job. Nothing here calls upward: watch failures are return values
and the `refused` / `limit_reached` state the service reads.
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
from collections import OrderedDict, deque
from typing import NamedTuple, Optional

import pyinotify

from .watch_index import WatchIndex

# pyinotify logs its own errors and warnings to stderr; ours say the same in context.
logging.getLogger("pyinotify").setLevel(logging.CRITICAL + 1)

MASK = (pyinotify.IN_CLOSE_WRITE | pyinotify.IN_MOVED_TO | pyinotify.IN_MOVED_FROM
        | pyinotify.IN_CREATE | pyinotify.IN_DELETE | pyinotify.IN_DELETE_SELF
        | pyinotify.IN_MOVE_SELF | pyinotify.IN_ONLYDIR | pyinotify.IN_DONT_FOLLOW
        | pyinotify.IN_EXCL_UNLINK | pyinotify.IN_ATTRIB)

_HEADER = struct.Struct("iIII")             # struct inotify_event: wd, mask, cookie, len
_IS_DIR = pyinotify.IN_ISDIR
_CLOSE_WRITE = pyinotify.IN_CLOSE_WRITE
_MOVED_TO = pyinotify.IN_MOVED_TO
_MOVED_FROM = pyinotify.IN_MOVED_FROM
_CREATE = pyinotify.IN_CREATE
_ATTRIB = pyinotify.IN_ATTRIB
_RARE = (pyinotify.IN_Q_OVERFLOW | pyinotify.IN_IGNORED | pyinotify.IN_DELETE_SELF
         | pyinotify.IN_MOVE_SELF | pyinotify.IN_UNMOUNT)
READ_SIZE = 128 << 10
# One read() parses about this many bytes of events (~1,200 events, 5-15 ms measured during an
# rm -rf; 128 KB took up to 38 ms) and leaves the rest for the next, so that a loop turn stays
# short whatever piled up (rm -rf of 30,000 directories queues 90,000 events).
READ_BUDGET = 48 << 10
GATHER_SECONDS = 0.002
# Past this many bytes of unread events the reader thread drops what it reads and the loop
# is told OVERFLOW, as the kernel does when its own queue is full: the service reconciles.
BUFFER_LIMIT = 64 << 20
# A MOVED_FROM waits this long (and at least until the next read) for its MOVED_TO: the two
# are adjacent in the kernel's queue, but a read may end between them.
HOLD_SECONDS = 0.005

# Change kinds
FILE_DONE = "file_done"        # a file closed after writing, or moved in: register it
FILE_GONE = "file_gone"        # a file deleted or moved away
FILE_MOVED = "file_moved"      # a file renamed inside the watched trees: path is new, source old
FILE_ATTRIB = "file_attrib"    # a file's mode, owner or times changed: judge it again if held
FILE_LINKED = "file_linked"    # a file created, complete if it is a hard link (ln, rsync --link-dest)
DIR_ARRIVED = "dir_arrived"    # a directory created or moved in: watch and walk it
DIR_LEFT = "dir_left"          # a directory deleted or moved away (its watches are gone already)
DIR_MOVED = "dir_moved"        # a directory renamed inside the watched trees (watches follow it)
DIR_ATTRIB = "dir_attrib"      # a directory's mode or owner changed: it may be readable now
ROOT_GONE = "root_gone"        # a watched root itself was deleted or moved
ROOT_UNMOUNTED = "root_unmounted"  # the file system holding a watched root was unmounted
OVERFLOW = "overflow"          # events were dropped (kernel or reader buffer): reconcile everything


class Change(NamedTuple):
    kind: str
    path: str
    source: str = ""           # FILE_MOVED, DIR_MOVED: the path before the rename


class _Held(NamedTuple):
    path: str
    is_dir: bool
    until: float
    chunk: int                 # the number of the chunk it came in


class Watcher:
    """Watches directories, one at a time, and reports what changed below them."""

    def __init__(self, buffer_limit: int = BUFFER_LIMIT) -> None:
        self._wm = pyinotify.WatchManager()
        self._index = WatchIndex()
        self._roots: dict[int, str] = {}   # wd of each watched root -> its path
        # Directories the kernel refused a watch for lack of watches (ENOSPC): the service
        # covers them by walking; `limit_reached` stays true once it happened.
        self.refused: set[str] = set()
        self.limit_reached = False
        # A thread does nothing but move the kernel's queued events into this deque: the
        # kernel's queue (fs.inotify.max_queued_events) then never fills while the loop is
        # busy writing rows, and a burst costs no overflow and no reconcile. None in it
        # marks where the reader dropped events because the deque held `buffer_limit` bytes.
        self._chunks: deque[Optional[bytes]] = deque()
        self._buffer_limit = buffer_limit
        self._appended = 0                 # bytes appended, written by the reader thread only
        self._taken = 0                    # bytes taken out, written by read() only
        self._held: OrderedDict[int, _Held] = OrderedDict()   # cookie -> a MOVED_FROM awaiting its MOVED_TO
        self._held_paths: dict[str, int] = {}
        self._release_at = 0.0             # when the reader thread must wake the loop for held moves
        self._chunk_no = 0                 # chunks parsed so far
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._control_read, self._control_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._reader = threading.Thread(target=self._drain_kernel_queue, name="inotify-reader", daemon=True)
        self._reader.start()

    # --- the reader thread ---------------------------------------------------------------

    def _drain_kernel_queue(self) -> None:
        inotify_fd = self._wm.get_fd()
        poller = select.poll()
        poller.register(inotify_fd, select.POLLIN)
        poller.register(self._control_read, select.POLLIN)
        dropping = False
        wake_at: Optional[float] = None
        while True:
            timeout = None if wake_at is None else max(0.0, (wake_at - time.monotonic()) * 1000)
            ready = poller.poll(timeout)
            if not ready:                  # a held MOVED_FROM's time is up: the loop releases it
                wake_at = None
                self._wake()
                continue
            for fd, _ in ready:
                if fd == self._control_read:
                    orders = os.read(self._control_read, 512)
                    if b"q" in orders:
                        return
                    wake_at = self._release_at
                    continue
                try:
                    data = os.read(inotify_fd, READ_SIZE)
                except OSError:
                    return
                if self._appended - self._taken + len(data) > self._buffer_limit:
                    if not dropping:       # one marker per run of dropped reads
                        dropping = True
                        self._chunks.append(None)
                else:
                    dropping = False
                    self._appended += len(data)
                    self._chunks.append(data)
                # A wake-up after every append, never "only if it was empty": the loop may
                # empty the deque between such a check and the append, and then no wake-up
                # would ever come again (a stall the benchmark caught, fixed in 125677a).
                self._wake()
                # Let events gather: waking per event in a burst (100,000 a second) costs
                # more than it moves. The kernel's queue takes >100 ms to fill at that rate.
                time.sleep(GATHER_SECONDS)

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"!")
        except BlockingIOError:
            pass  # the pipe is full: the loop has wake-ups pending already

    # --- watches -------------------------------------------------------------------------

    def fileno(self) -> int:
        """Readable when changes are waiting for read()."""
        return self._wake_read

    def watch(self, directory: str, is_root: bool = False) -> Optional[int]:
        """Watch one directory (not its subdirectories). None, or the errno of the failure.

        Watching an already watched directory again is harmless: the kernel hands back
        the same descriptor and the index records the path it has now. ENOSPC (the watch
        limit) also puts the directory in `refused` and sets `limit_reached`.
        """
        directory = os.path.normpath(directory)
        mask = MASK
        if is_root or directory in self._roots.values():
            # A root is configuration, not something found in the tree: a root that is a
            # link (/srv/videos -> /mnt/disk1/videos) is watched through it. Links below
            # a root are still never followed.
            mask &= ~pyinotify.IN_DONT_FOLLOW
        try:
            wd = self._wm.add_watch(directory, mask, quiet=True).get(directory, -1)
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
        previous = self._index.wd(directory)
        self._index.add(directory, wd)
        if previous is not None and previous != wd:
            # Another directory is at this path now; the old one's watch stands for nothing.
            self._roots.pop(previous, None)
            self._wm.rm_watch(previous, quiet=True)
        if is_root:
            self._roots[wd] = directory
        return None

    def unwatch_tree(self, directory: str) -> None:
        """Stop watching a directory that left and everything below it (linear in that subtree)."""
        # Not rm_watch(rec=True): pyinotify 0.9.6 deletes from its watch table while
        # iterating it there, and it scans every watch for each one removed.
        directory = os.path.normpath(directory)
        wds = self._index.remove_tree(directory)
        if self._roots:
            for wd in wds:
                self._roots.pop(wd, None)
        if self.refused:   # changed in place: the service may hold this set
            self.refused.difference_update([d for d in self.refused if _is_within(d, directory)])
        if wds:
            self._wm.rm_watch(wds, quiet=True)

    def watch_count(self) -> int:
        return len(self._index)

    def _move_tree(self, old: str, new: str) -> None:
        """A watched directory was renamed: its watches (and pyinotify's records) follow it."""
        self.unwatch_tree(new)             # a rename over an empty directory replaces it
        watches = self._wm.watches
        for wd, path in self._index.move_tree(old, new):
            watch = watches.get(wd)
            if watch is not None:
                watch.path = path
        moved = [d for d in self.refused if _is_within(d, old)]
        self.refused.difference_update(moved)
        self.refused.update(new + d[len(old):] for d in moved)

    # --- events ----------------------------------------------------------------------------

    @property
    def backlog(self) -> bool:
        """Events are waiting to be read (or a rename to be paired): what a walk would see
        now may already have changed in ways these events will report."""
        return bool(self._chunks) or bool(self._held)

    def read(self, budget: int = READ_BUDGET) -> list[Change]:
        """The changes the kernel has reported since the last call, about `budget` bytes of
        events' worth; fileno() stays readable while more are waiting."""
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass
        changes: list[Optional[Change]] = []
        self._now = time.monotonic()
        self._touched: set[str] = set()          # files with a change in this read
        # A file's FILE_ATTRIB or FILE_LINKED in this read, by its index: its close or rename
        # in the same read says it all (a burst of new files costs one change a file).
        self._replaceable: dict[str, int] = {}
        self._overflowed = False
        self._superseded = False
        chunks = self._chunks
        parsed = 0
        while chunks and parsed < budget:
            data = chunks.popleft()
            if data is None:
                self._overflow(changes)
                continue
            self._taken += len(data)
            parsed += len(data)
            self._chunk_no += 1
            self._parse(data, changes)
        if chunks:
            self._wake()     # the rest next time
        self._release_expired(changes, bool(chunks))
        if self._superseded:
            return [c for c in changes if c is not None]
        return changes  # type: ignore[return-value]

    def _parse(self, data: bytes, changes: list[Optional[Change]]) -> None:
        # pyinotify's own reading (Notifier.read_events/process_events) is not used: it
        # decodes names as strict UTF-8, so one name that is not UTF-8 raises and loses
        # every event read with it, and it formats a debug string for every event, whatever
        # the log level (an eighth of the CPU of a burst).
        paths = self._index.paths
        touched = self._touched
        held_paths = self._held_paths
        append = changes.append
        last_wd, last_name = -1, b""
        offset, size = 0, len(data)
        while offset < size:
            wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
            name_at = offset + 16
            offset = name_at + length
            if mask & _RARE or not length:
                self._rare(wd, mask, changes)
                continue
            name = data[name_at:offset]
            if mask & _ATTRIB and wd == last_wd and name == last_name:
                continue  # the file of the event before (closed, then its times set): nothing new
            last_wd, last_name = wd, name
            directory = paths.get(wd)
            if directory is None:
                continue  # from a watch already removed
            path = directory + "/" + os.fsdecode(name.rstrip(b"\0"))
            if held_paths and path in held_paths:
                # The name is used again before its MOVED_FROM was paired: that one left first.
                self._release(held_paths[path], changes)
            if mask & _CLOSE_WRITE:
                if self._replaceable and path in self._replaceable:
                    self._supersede(path, changes)
                touched.add(path)
                append(Change(FILE_DONE, path))
            elif mask & _ATTRIB:
                if mask & _IS_DIR:
                    append(Change(DIR_ATTRIB, path))
                elif path not in touched:
                    # One per file per read, and none after its close or creation in the same
                    # read: the gate looks at the file after the whole read anyway (a burst
                    # copied with its times, cp -p or rsync -t, costs no extra change).
                    touched.add(path)
                    self._replaceable[path] = len(changes)
                    append(Change(FILE_ATTRIB, path))
            elif mask & _MOVED_FROM:
                self._hold(cookie, path, bool(mask & _IS_DIR))
            elif mask & _MOVED_TO:
                self._moved_to(cookie, path, bool(mask & _IS_DIR), changes)
            elif mask & _CREATE:
                # A new directory is walked at once: files may be written into it before its
                # own watch is in place. A new file counts when it is closed, unless it is a
                # hard link, which is complete when it appears and is never closed here.
                if mask & _IS_DIR:
                    append(Change(DIR_ARRIVED, path))
                else:
                    touched.add(path)
                    self._replaceable[path] = len(changes)
                    append(Change(FILE_LINKED, path))
            elif mask & _IS_DIR:               # IN_DELETE
                self.unwatch_tree(path)
                append(Change(DIR_LEFT, path))
            else:
                append(Change(FILE_GONE, path))

    def _rare(self, wd: int, mask: int, changes: list[Optional[Change]]) -> None:
        """Overflow, a watch removed by the kernel, something about a watched directory itself."""
        if mask & pyinotify.IN_Q_OVERFLOW:
            self._overflow(changes)
        elif mask & pyinotify.IN_IGNORED:
            self._index.drop(wd)
            self._roots.pop(wd, None)
            if wd in self._wm.watches:
                self._wm.del_watch(wd)
        else:
            # DELETE_SELF, MOVE_SELF, UNMOUNT, ATTRIB of the watched directory itself. A
            # subdirectory's parent reports the same with its name; only a root, whose
            # parent is not watched, needs these.
            root = self._roots.get(wd)
            if root is None:
                return
            if mask & (pyinotify.IN_DELETE_SELF | pyinotify.IN_MOVE_SELF | pyinotify.IN_UNMOUNT):
                self.unwatch_tree(root)
                gone = ROOT_UNMOUNTED if mask & pyinotify.IN_UNMOUNT else ROOT_GONE
                changes.append(Change(gone, root))
            elif mask & _ATTRIB:
                changes.append(Change(DIR_ATTRIB, root))

    def _overflow(self, changes: list[Optional[Change]]) -> None:
        # A move's other half may be among what was dropped: held ones count as gone.
        while self._held:
            self._release(next(iter(self._held)), changes)
        if not self._overflowed:
            self._overflowed = True
            changes.append(Change(OVERFLOW, ""))

    def _supersede(self, path: str, changes: list[Optional[Change]]) -> None:
        """A file closed or renamed after its FILE_ATTRIB or FILE_LINKED in the same read:
        the close or the rename says it all."""
        changes[self._replaceable.pop(path)] = None
        self._superseded = True

    # --- renames ---------------------------------------------------------------------------

    def _hold(self, cookie: int, path: str, is_dir: bool) -> None:
        self._held[cookie] = _Held(path, is_dir, self._now + HOLD_SECONDS, self._chunk_no)
        self._held_paths[path] = cookie

    def _moved_to(self, cookie: int, path: str, is_dir: bool, changes: list[Optional[Change]]) -> None:
        source = self._held.pop(cookie, None)
        if source is None:                    # moved in from outside the watched trees
            if is_dir:
                changes.append(Change(DIR_ARRIVED, path))
            else:
                self._touched.add(path)
                changes.append(Change(FILE_DONE, path))
            return
        del self._held_paths[source.path]
        if self._replaceable and source.path in self._replaceable:
            self._supersede(source.path, changes)   # rsync sets a temporary file's times, then renames it
        if is_dir:
            self._move_tree(source.path, path)
            changes.append(Change(DIR_MOVED, path, source.path))
        else:
            self._touched.add(path)
            changes.append(Change(FILE_MOVED, path, source.path))

    def _release(self, cookie: int, changes: list[Optional[Change]]) -> None:
        """A MOVED_FROM whose MOVED_TO never came: it left the watched trees."""
        held = self._held.pop(cookie)
        del self._held_paths[held.path]
        if held.is_dir:
            self.unwatch_tree(held.path)
            changes.append(Change(DIR_LEFT, held.path))
        else:
            changes.append(Change(FILE_GONE, held.path))

    def _release_expired(self, changes: list[Optional[Change]], more_waiting: bool) -> None:
        held = self._held
        while held:
            cookie, first = next(iter(held.items()))
            if more_waiting and first.chunk >= self._chunk_no:
                return       # its pair may be in the next chunk, not parsed yet
            if first.until > self._now:
                # Not yet: the reader thread wakes the loop when it is, if nothing else does.
                if first.until != self._release_at:
                    self._release_at = first.until
                    self._order(b"t")
                return
            self._release(cookie, changes)

    def _order(self, order: bytes) -> None:
        try:
            os.write(self._control_write, order)
        except BlockingIOError:
            pass  # a full pipe: the reader thread is gone, or has orders enough to wake on

    def close(self) -> None:
        self._order(b"q")
        self._reader.join(timeout=5)
        self._wm.close()
        for fd in (self._wake_read, self._wake_write, self._control_read, self._control_write):
            os.close(fd)


def _is_within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")
