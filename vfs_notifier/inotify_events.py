"""Raw inotify events turned into changes: what happened to which path.

Each raw event becomes at most one `Change` (a rename's two events become one, through
RenamePairs); deciding what a change means for the table is the gate's job. A directory
that left, or was renamed, takes its watches with it here, before any later event of the
same read is looked up.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple, Optional

import pyinotify

from .inotify_watches import Watches
from .rename_pairs import Held, RenamePairs

_HEADER = struct.Struct("iIII")             # struct inotify_event: wd, mask, cookie, len
_IS_DIR = pyinotify.IN_ISDIR
_CLOSE_WRITE = pyinotify.IN_CLOSE_WRITE
_MOVED_TO = pyinotify.IN_MOVED_TO
_MOVED_FROM = pyinotify.IN_MOVED_FROM
_CREATE = pyinotify.IN_CREATE
_ATTRIB = pyinotify.IN_ATTRIB
_RARE = (pyinotify.IN_Q_OVERFLOW | pyinotify.IN_IGNORED | pyinotify.IN_DELETE_SELF
         | pyinotify.IN_MOVE_SELF | pyinotify.IN_UNMOUNT)

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


class EventParser:
    """Parses the chunks of one read into changes: begin(), parse() each chunk, end()."""

    def __init__(self, watches: Watches, pairs: RenamePairs) -> None:
        self._watches = watches
        self._pairs = pairs
        self._chunk_no = 0                 # chunks parsed so far
        self._begin(0.0)

    def _begin(self, now: float) -> None:
        self._now = now
        self._touched: set[str] = set()          # files with a change in this read
        # A file's FILE_ATTRIB or FILE_LINKED in this read, by its index: its close or rename
        # in the same read says it all (a burst of new files costs one change a file).
        self._replaceable: dict[str, int] = {}
        self._overflowed = False
        self._superseded = False

    def begin(self, now: float) -> list[Optional[Change]]:
        """Start a read at time.monotonic() `now`: the list its changes go into."""
        self._begin(now)
        return []

    def end(self, changes: list[Optional[Change]], more_waiting: bool) -> tuple[list[Change], Optional[float]]:
        """The read's changes, with renames whose other half can no longer come released as
        gone; and when the oldest rename still held expires, if the loop must wake for it."""
        gone, wake_at = self._pairs.expired(self._now, self._chunk_no, more_waiting)
        for held in gone:
            self._gone(held, changes)
        if self._superseded:
            return [c for c in changes if c is not None], wake_at
        return changes, wake_at  # type: ignore[return-value]

    def parse(self, data: bytes, changes: list[Optional[Change]]) -> None:
        # pyinotify's own reading (Notifier.read_events/process_events) is not used: it
        # decodes names as strict UTF-8, so one name that is not UTF-8 raises and loses
        # every event read with it, and it formats a debug string for every event, whatever
        # the log level (an eighth of the CPU of a burst).
        self._chunk_no += 1
        paths = self._watches.index.paths
        touched = self._touched
        held_paths = self._pairs.paths
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
                self._gone(self._pairs.take(held_paths[path]), changes)  # type: ignore[arg-type]
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
                self._pairs.hold(cookie, path, bool(mask & _IS_DIR), self._now, self._chunk_no)
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
                self._watches.unwatch_tree(path)
                append(Change(DIR_LEFT, path))
            else:
                append(Change(FILE_GONE, path))

    def _rare(self, wd: int, mask: int, changes: list[Optional[Change]]) -> None:
        """Overflow, a watch removed by the kernel, something about a watched directory itself."""
        if mask & pyinotify.IN_Q_OVERFLOW:
            self.overflow(changes)
        elif mask & pyinotify.IN_IGNORED:
            self._watches.forget(wd)
        else:
            # DELETE_SELF, MOVE_SELF, UNMOUNT, ATTRIB of the watched directory itself. A
            # subdirectory's parent reports the same with its name; only a root, whose
            # parent is not watched, needs these.
            root = self._watches.roots.get(wd)
            if root is None:
                return
            if mask & (pyinotify.IN_DELETE_SELF | pyinotify.IN_MOVE_SELF | pyinotify.IN_UNMOUNT):
                self._watches.unwatch_tree(root)
                gone = ROOT_UNMOUNTED if mask & pyinotify.IN_UNMOUNT else ROOT_GONE
                changes.append(Change(gone, root))
            elif mask & _ATTRIB:
                changes.append(Change(DIR_ATTRIB, root))

    def overflow(self, changes: list[Optional[Change]]) -> None:
        """Events were dropped (by the kernel, or by the reader thread): one OVERFLOW a read."""
        # A move's other half may be among what was dropped: held ones count as gone.
        for held in self._pairs.take_all():
            self._gone(held, changes)
        if not self._overflowed:
            self._overflowed = True
            changes.append(Change(OVERFLOW, ""))

    def _supersede(self, path: str, changes: list[Optional[Change]]) -> None:
        """A file closed or renamed after its FILE_ATTRIB or FILE_LINKED in the same read:
        the close or the rename says it all."""
        changes[self._replaceable.pop(path)] = None
        self._superseded = True

    def _moved_to(self, cookie: int, path: str, is_dir: bool, changes: list[Optional[Change]]) -> None:
        source = self._pairs.take(cookie)
        if source is None:                    # moved in from outside the watched trees
            if is_dir:
                changes.append(Change(DIR_ARRIVED, path))
            else:
                self._touched.add(path)
                changes.append(Change(FILE_DONE, path))
            return
        if self._replaceable and source.path in self._replaceable:
            self._supersede(source.path, changes)   # rsync sets a temporary file's times, then renames it
        if is_dir:
            self._watches.move_tree(source.path, path)
            changes.append(Change(DIR_MOVED, path, source.path))
        else:
            self._touched.add(path)
            changes.append(Change(FILE_MOVED, path, source.path))

    def _gone(self, held: Held, changes: list[Optional[Change]]) -> None:
        """A MOVED_FROM whose MOVED_TO never came: it left the watched trees."""
        if held.is_dir:
            self._watches.unwatch_tree(held.path)
            changes.append(Change(DIR_LEFT, held.path))
        else:
            changes.append(Change(FILE_GONE, held.path))
