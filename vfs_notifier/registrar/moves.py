"""Renames as bulk UPDATEs: a file's or a directory's rows follow it, keeping their ids and
status; a file renamed over a registered one takes its place (that row is withdrawn); rows a
stale rename carried where their files never were go back, or are withdrawn."""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Sequence

from ..memory import VersionMemory
from ..rows import printable, quote_segment
from ..settings import Root
from ..store import Fence, Remembered, Store
from .disk import same_file
from .queue import Move

log = logging.getLogger("vfs_notifier")


class MoveWriter:
    def __init__(self, store: Store, roots: Sequence[Root], forget_removed: bool) -> None:
        self.store = store
        self.roots = tuple(roots)
        self.forget_removed = forget_removed
        self.moved = self.withdrawn = 0

    def write(self, moves: list[Move], memory: VersionMemory, fence_of: Callable[[Iterable[str]], Fence],
              withdrawals: dict[str, bool]) -> None:
        """Write every waiting rename, in order (each leaves the list once written). Rows found
        where no file is are added to `withdrawals`, checked on disk like any other."""
        while moves:
            move = moves[0]
            replaced = None if move.is_dir else memory.get(move.new)
            fence = fence_of((move.old, move.new))
            if replaced is not None and self.forget_removed:
                # Renamed over a registered file: that file is gone, and its row with it.
                self.store.withdraw([replaced.video_id], fence)
                memory.remove(move.new)
                self.withdrawn += 1
            moved = self.store.move(move.old, move.new, move.main_dir, move.old_url, move.new_url, fence)
            if move.is_dir:
                below = list(self.store.remembered_below(move.new))
                for entry in below:
                    _rekey(memory, move.old + entry.path[len(move.new):], entry.path)
                moved -= self._undo_stale(move, below, memory, fence, withdrawals)
            else:
                _rekey(memory, move.old, move.new)
            moves.pop(0)
            if moved:
                self.moved += moved
                log.info("moved %d rows from %s to %s", moved, printable(move.old), printable(move.new),
                         extra={"VIDEO_PATH": move.new})

    def _undo_stale(self, move: Move, below: list[Remembered], memory: VersionMemory, fence: Fence,
                    withdrawals: dict[str, bool]) -> int:
        """Rows the rename's event is older than: a walk registered what is at the old path now.

        Events describe the past and walks the present: when a directory is renamed and a new
        one made at its old path before the rename's events are read, rows of the new
        directory's files are under the old path already, and the bulk move carried them
        along. Each moved row's file is checked (an lstat) against the identity remembered
        for it; one that is not at its new path but is at its old one goes back. One that is at
        neither (the new directory went too) is withdrawn, checked on disk as every withdrawal:
        no event will name the path the move carried it to, where its file never was.
        """
        back = 0
        for entry in below:
            if same_file(entry.path, entry.version):
                continue
            suffix = entry.path[len(move.new):]
            old_path = move.old + suffix
            if not same_file(old_path, entry.version):
                if self.forget_removed:
                    withdrawals[entry.path] = False
                continue
            url_suffix = "/".join(quote_segment(part) for part in suffix.split("/"))
            main_dir = next((r.path for r in self.roots if old_path.startswith(r.path + "/")), move.main_dir)
            back += self.store.move(entry.path, old_path, main_dir, move.new_url + url_suffix,
                                    move.old_url + url_suffix, fence)
            _rekey(memory, entry.path, old_path)
        return back


def _rekey(memory: VersionMemory, old: str, new: str) -> None:
    entry = memory.get(old)
    if entry is not None:
        memory.remove(old)
        memory.put_entry(new, entry)
