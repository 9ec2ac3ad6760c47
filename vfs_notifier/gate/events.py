"""The gate's events: the kernel's changes (Watcher's Change) turned into candidates to
judge, row moves and withdrawals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..judge import download_target, whole_on_creation
from ..rows import Unstorable
from ..watcher import DIR_ARRIVED, DIR_LEFT, FILE_GONE, Change

if TYPE_CHECKING:
    from ..judge import Judge
    from ..registrar import Registrar


class Events:
    """One handler per kind of change (a mixin of Gate: the walks and routing parts give
    _job, _judge_and_offer and _root_of)."""

    judge: "Judge"
    registrar: "Registrar"
    mirror: bool
    unreadable: set[str]
    _clean: set[str]

    def _file_done(self, change: Change) -> None:
        """Closed after writing: judge it now."""
        self._note_control_file(change.path)
        self._judge_and_offer(change.path, closed=True, announce=True)

    def _file_attrib(self, change: Change) -> None:
        if change.path in self.judge.held:
            self._judge_and_offer(change.path, closed=False, announce=True)

    def _note_control_file(self, path: str) -> None:
        """A download tool's control file arrived: its directory's files are looked at for theirs."""
        if download_target(path) is not None:
            self._clean.discard(path.rpartition("/")[0])

    def _file_linked(self, change: Change) -> None:
        self._note_control_file(change.path)
        if not whole_on_creation(change.path):
            return
        self._judge_and_offer(change.path, closed=False, announce=True)

    def _file_gone(self, change: Change) -> None:
        path = change.path
        self.judge.forget(path)
        download = download_target(path)
        if download is not None:
            # aria2c and lftp pget remove their control file when the download is complete.
            if download in self.judge.held:
                self._judge_and_offer(download, closed=True, announce=True)
            return
        found = self._root_of(path)
        if found is None or not self.mirror:
            return
        try:
            row = found[1].row_for_path(path)
        except Unstorable:
            return
        self.registrar.withdraw(row.path, is_dir=False)

    def _file_moved(self, change: Change) -> None:
        self._note_control_file(change.path)
        self.judge.forget(change.source)
        self._move_rows(change.source, change.path, is_dir=False)
        self._judge_and_offer(change.path, closed=True, announce=True)

    def _directory_moved(self, change: Change) -> None:
        self.judge.forget_below(change.source)
        self._move_rows(change.source, change.path, is_dir=True)
        # Walk it: files below that were held or never registered are judged again there.
        self.directory_arrived(Change(DIR_ARRIVED, change.path))

    def _move_rows(self, old: str, new: str, is_dir: bool) -> None:
        """A rename within the roots moves rows; out of them, it withdraws them (mirror only)."""
        source, target = self._root_of(old), self._root_of(new)
        if not self.mirror or source is None:
            return
        if target is None:
            if is_dir:
                self.directory_left(Change(DIR_LEFT, old))
            else:
                self._file_gone(Change(FILE_GONE, old))
            return
        try:
            if is_dir:
                old_row, new_row = source[1].directory_row(old), target[1].directory_row(new)
            else:
                old_row, new_row = source[1].row_for_path(old), target[1].row_for_path(new)
        except Unstorable:
            return
        self.registrar.move(old_row, new_row, is_dir)

    def _directory_attrib(self, change: Change) -> None:
        """A directory's mode changed: one a walk could not read is walked again."""
        if change.path in self.unreadable:
            self.unreadable.discard(change.path)
            self.directory_arrived(change)

    def directory_left(self, change: Change) -> None:
        path = change.path
        self.judge.forget_below(path)
        if self.mirror and self._root_of(path) is not None:
            self.registrar.withdraw(path, is_dir=True)

    def directory_arrived(self, change: Change) -> None:
        """A directory was created or moved in: walk it now, before other queued walks."""
        found = self._root_of(change.path)
        if found is not None:
            self.jobs.appendleft(self._job(found[0], found[1], change.path, full=False))

