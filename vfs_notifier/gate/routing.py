"""The gate's routing: a path's verdict from the judge, sent where the registration mode
wants it (copy mode: to the copier, registered once copied; in place: offered to the
registrar), or withdrawn when a registered path is no video any more."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Optional

from ..judge import FINISHED, HELD, HELD_SETTLING, Judge, Verdict
from ..registrar import version_of
from ..rows import RowMaker, Unstorable, printable
from ..settings import Root

if TYPE_CHECKING:
    from ..copy_mode import CopyRegistration
    from ..registrar import Registrar

log = logging.getLogger("vfs_notifier")

WARNED_MAX = 10000


class Counts:
    def __init__(self) -> None:
        self.found = self.new = self.already = self.skipped = 0



class Routing:
    """From a path to the judge, and from its verdict to the registrar (a mixin of Gate)."""

    judge: Judge
    registrar: "Registrar"
    copying: "Optional[CopyRegistration]"
    mirror: bool
    makers: list[tuple[Root, RowMaker]]
    counts: Counts
    _warned: set[str]
    _clean: set[str]

    def _judge_and_offer(self, path: str, closed: bool, announce: bool,
                         st: Optional[os.stat_result] = None, control: Optional[bool] = None,
                         located: Optional[tuple[Root, RowMaker]] = None) -> None:
        """Ask the judge about `path` and route its verdict; `st`: an lstat the caller just took,
        `control`: whether its listing showed a download tool's control file beside it,
        `located`: its root and row maker, if the caller knows them (a walk does)."""
        if located is None:
            located = self._root_of(path)
            if located is None:
                return
        root, maker = located
        if not self.registrar.may_write(root.path):
            return      # a standby judges nothing: the holder registers it
        if self.copying is None and self.registrar.store_away:
            # Nothing judged could be written: the walk of every root on reconnecting judges
            # this file there. Judging now would only let the loop fall behind a writer and
            # its unread events pile up in memory (an outage must leave memory flat).
            return
        relative = path[len(root.path) + 1:]
        if self.judge.names.not_candidate(relative):
            return
        directory, _, name = path.rpartition("/")
        if closed and st is None and path not in self.judge.held:
            # A burst into a new directory: its walk judged the file before its close event
            # was read. The same version, queued or registered, needs no second judgement
            # (nor its row made again: quoting its URL costs more than this test).
            try:
                st = os.lstat(path)
                if self.registrar.is_current(maker.stored_path(directory, name), version_of(st)):
                    self.counts.already += 1
                    return
            except (OSError, Unstorable):
                st = None
        try:
            row = maker.row(directory, name)   # a name no row can hold is said before anything else
        except Unstorable as err:
            self._skip(path, str(err))
            return
        was_held = self.judge.held.get(path)
        was_kind = self.judge.kind_of(path)
        if control is None and directory in self._clean:
            control = False
        verdict = self.judge.judge_file(path, relative, closed, st, control)
        if verdict.state == HELD:
            if was_held != verdict.reason:
                self._tell_held(path, verdict, was_kind)
            return
        if verdict.state != FINISHED:
            if self.mirror and self.registrar.has_row(row.path):
                # A registered path that is no video file now (a link renamed over it, a
                # directory): the one withdrawal, which checks the disk when it deletes.
                self.registrar.withdraw(row.path, is_dir=False)
            return
        assert verdict.stat is not None
        version = version_of(verdict.stat)
        if self.copying is not None:
            if self.registrar.is_current(row.path, version):
                self.counts.already += 1
            else:
                self.copying.offer(row, version, path, announce)   # registered once copied
                self.counts.new += 1
            return
        if self.registrar.offer(row, version, announce):
            self.counts.new += 1
            if was_held is not None:
                log.info("%s is finished now (was held: %s)", printable(path), was_held)
        else:
            self.counts.already += 1

    def _tell_held(self, path: str, verdict: Verdict, before: Optional[str]) -> None:
        """`before`: the kind the path was held as, None if it was not held."""
        # Settling is the normal way of a file without proof in its framing: said quietly.
        # A file the judge found incomplete is said once, loud, with the reason in words.
        if verdict.kind == HELD_SETTLING:
            log.debug("holding %s: %s", printable(path), verdict.reason)
        elif before is None or before == HELD_SETTLING:
            log.warning("holding %s as incomplete: %s", printable(path), verdict.reason,
                        extra={"VIDEO_PATH": path})

    def _skip(self, path: str, why: str) -> None:
        self.counts.skipped += 1
        # Overlapping walks and periodic rescans meet the same file again: it is named once.
        if path in self._warned:
            return
        if len(self._warned) >= WARNED_MAX:
            self._warned.clear()
        self._warned.add(path)
        log.warning("skipped %s: %s", printable(path), why)

    def _root_of(self, path: str) -> Optional[tuple[Root, RowMaker]]:
        for root, maker in self.makers:
            if path == root.path or path.startswith(root.path + "/"):
                return root, maker
        return None


