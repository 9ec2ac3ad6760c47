"""The judge of "finished": the only place that decides whether a path is a finished video.

A row tells the platform "this video is complete, play it", and neither inotify events nor
timestamps can tell a finished upload from an interrupted one. The judge combines, in order:

1. Names (pure, judge_names.py): hidden files and anything below a hidden directory (rsync's
   `.~tmp~`, `.rsync-partial`, macOS `._` forks, `.Trash-1000`), partial-download suffixes,
   endings that are not videos, and the operator's `ignore` globs are not candidates.
2. The file: gone, not a regular file, a download tool's control file beside it
   (`NAME.aria2` of aria2c, `NAME.lftp-pget-status` of `lftp pget`: both make the file its
   full size first and fill it from several places), empty.
3. Its container framing (framing.check): proven complete, proven incomplete, or cannot tell.
4. Open writers, probed with a read lease (F_SETLEASE fails while anyone has the file open
   for writing): a writer paused across a restart holds the file, not a timer.
5. Where the framing cannot tell (or the check is off): stability seen by the service itself,
   the file's (size, mtime, inode, ctime) unchanged for `settle_seconds` on the service's
   monotonic clock. The file's mtime is never compared with the wall clock, so files from
   the future (a fast clock elsewhere) and from 1970 (rsync -t of a partial file) settle alike.

A file whose framing is proven incomplete is held for as long as it stays so, which for a
file that plays anyway (a damaged one, one with an odd writer) is for ever: its reason says
how the operator lets this one file through (`vfs-notifier release FILE`, the extended
attribute RELEASE_XATTR naming its size), not the whole check.

A file judged unfinished is HELD with a reason in words (`held`, for STATUS and
`vfs-notifier pending`); the caller re-judges it on its next close, move or attribute change,
on each rescan, and when due() says its stability window may have completed.
"""

from __future__ import annotations

import errno
import fcntl
import heapq
import os
import stat
import time
from typing import Callable, NamedTuple, Optional

from . import framing
from .judge_names import CONTROL_FILES, PARTIAL_SUFFIXES, Names, control_file, download_target
from .store import Version

__all__ = ["CONTROL_FILES", "FINISHED", "GONE", "HELD", "HELD_INCOMPLETE", "HELD_SETTLING",
           "NOT_CANDIDATE", "PARTIAL_SUFFIXES", "RELEASE_HINT", "RELEASE_XATTR", "Judge", "Names",
           "Verdict", "control_file", "download_target", "identity", "open_writer", "release",
           "released", "whole_on_creation"]

FINISHED, HELD, NOT_CANDIDATE, GONE = "finished", "held", "not a candidate", "gone"
# A verdict's kind: its state, with HELD told apart by what ends the wait. A file SETTLING
# is on its way to FINISHED by the clock alone (said quietly); one HELD_INCOMPLETE waits for
# evidence (its framing, its writer's close, a download tool's control file going: said loud).
HELD_SETTLING, HELD_INCOMPLETE = "held settling", "held incomplete"

F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)
F_RDLCK = getattr(fcntl, "F_RDLCK", 0)
OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
WRITER_RECHECK_SECONDS = 1.0     # at least this long between probes of a file held open

# The operator's word that one file is finished as it is, whatever its framing says: the
# file's size when it was said (a file that changes since is judged afresh). An extended
# attribute, because it stays with the file through renames and restarts, needs no channel
# into the running service (setting it is an attribute change, which the service is told
# of), and is readable by `getfattr`.
RELEASE_XATTR = "user.vfs-notifier.release"
RELEASE_HINT = "; if it plays as it is: vfs-notifier release FILE"

EMPTY = "empty"
OPEN_FOR_WRITING = "open for writing"
SETTLING = "settling"
LEASED = "open by another program holding a lease"


class _Facts(NamedTuple):
    state: str                          # FINISHED, HELD, NOT_CANDIDATE or GONE
    reason: str                         # in words, for logs, STATUS and `pending`
    stat: Optional[os.stat_result]      # of the file judged (None when gone or not a candidate)


class Verdict(_Facts):
    """The judge's answer: (state, reason, stat), and its kind beside them: the state, or for
    HELD what ends the wait (HELD_SETTLING, HELD_INCOMPLETE). The kind is no tuple field, so a
    verdict still equals its (state, reason, stat)."""

    kind: str

    def __new__(cls, state: str, reason: str, stat: Optional[os.stat_result],
                kind: str) -> "Verdict":
        verdict = super().__new__(cls, state, reason, stat)
        verdict.kind = kind
        return verdict

    @property
    def settling(self) -> bool:
        return self.kind == HELD_SETTLING


def whole_on_creation(path: str) -> bool:
    """Can a file just created be finished already? Only as a hard link to one that is (more
    than one name): any other new file is being written, and its close or move tells."""
    try:
        return os.lstat(path).st_nlink >= 2
    except OSError:
        return False


def open_writer(fd: int) -> Optional[bool]:
    """Is the file open for writing by anyone? Asked with a read lease, which the kernel
    refuses while any writer holds the file open. None: cannot tell (not the file's owner
    and no CAP_LEASE, a file system without leases, leases disabled). A lease taken is left
    to the caller's close of `fd`, which releases it (the judge closes it at once): a call
    to release it would cost a system call a file."""
    try:
        fcntl.fcntl(fd, F_SETLEASE, F_RDLCK)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EBUSY):
            return True
        return None
    return False


def release(path: str) -> int:
    """Mark `path` as finished as it is (RELEASE_XATTR): the judge registers it whatever its
    framing says, for as long as its size is the one returned."""
    st = os.stat(path)
    os.setxattr(path, RELEASE_XATTR, str(st.st_size).encode())
    return st.st_size


def released(path: str, st: os.stat_result) -> bool:
    """Did the operator release `path` at its present size?"""
    try:
        mark = os.getxattr(path, RELEASE_XATTR, follow_symlinks=False)
    except OSError:
        return False
    return mark == str(st.st_size).encode()


Identity = tuple[Version, int]


def identity(st: os.stat_result) -> Identity:
    """What must stay unchanged while a file settles: its version (the one rows are
    registered as) and its ctime, which a write that keeps size and mtime (touch -r after
    writing) still moves."""
    return (Version.of(st), st.st_ctime_ns)


class Look(NamedTuple):
    """What one read of a file found: the facts, not the verdict (the judge's to give)."""
    complete: Optional[bool]    # its framing: proven complete, proven incomplete, cannot tell
    reason: str                 # the framing's words
    writer: Optional[bool]      # open for writing by anyone when read (None: cannot tell)


def look_at(fd: int, st: os.stat_result, extension: str, check_structure: bool) -> Look:
    """Read the open regular file `fd` (`st` its fstat): its framing, when checked, and
    whether anyone has it open for writing (not asked of a file proven incomplete: it is
    held whoever has it open)."""
    if not check_structure:
        return Look(None, "", open_writer(fd))
    found = framing.check(fd, st.st_size, extension)
    writer = None if found.complete is False else open_writer(fd)
    return Look(found.complete, found.reason, writer)


class _Seen(NamedTuple):
    identity: Identity
    since: float


class Judge:
    """Decides FINISHED / HELD / NOT_CANDIDATE / GONE for one path at a time, remembering
    what it saw of the files it holds (only those: a finished file costs no memory)."""

    def __init__(self, names: Names, check_structure: bool = True, settle_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.names = names
        self.check_structure = check_structure
        self.settle_seconds = settle_seconds
        self.clock = clock
        self.held: dict[str, str] = {}          # path -> reason, for STATUS and `pending`
        self.settling: set[str] = set()         # the held paths whose kind is HELD_SETTLING
        self._seen: dict[str, _Seen] = {}       # path -> what the service saw, and since when
        self._due: dict[str, float] = {}        # path -> when to judge it again
        # The same times in a heap, so that a turn finds what is due without scanning every
        # held file (100,000 settling at a cold start with the framing check off); an entry
        # whose time no longer matches _due is stale and skipped.
        self._due_order: list[tuple[float, str]] = []

    # --- the verdict -------------------------------------------------------------------

    def judge(self, path: str, relative: str, closed: bool) -> Verdict:
        """Judge `path` (`relative` below its root) now. `closed`: the kernel just reported
        close-after-write or a move-in of this path."""
        why_not = self.names.not_candidate(relative)
        if why_not:
            self.forget(path)
            return Verdict(NOT_CANDIDATE, why_not, None, NOT_CANDIDATE)
        return self.judge_file(path, relative, closed)

    def judge_file(self, path: str, relative: str, closed: bool,
                   st: Optional[os.stat_result] = None, control: Optional[bool] = None) -> Verdict:
        """judge() for a path whose name the caller found a candidate already (by `names`);
        `st`: its lstat just taken, if the caller has one (a walk does). `control`: whether
        a control file (NAME.aria2, NAME.lftp-pget-status) is beside it, if the caller knows
        (a listing of the directory, or events since one); None: looked for here. In a
        directory a writer is filling, that lookup of a name that is not there waits for the
        writer's creates (a quarter of the loop's time in a 20,000-file burst)."""
        if st is None:
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                self.forget(path)
                return Verdict(GONE, "gone", None, GONE)
            except OSError as err:
                return self._hold(path, f"cannot look at it: {err.strerror}", None)
        if not stat.S_ISREG(st.st_mode):
            self.forget(path)
            return Verdict(NOT_CANDIDATE, "not a regular file", None, NOT_CANDIDATE)
        if control is None or control:
            suffix = control_file(path)
            if suffix is not None:
                return self._hold(path, f"{CONTROL_FILES[suffix]} download in progress "
                                  f"({os.path.basename(path)}{suffix} beside it)", st)
        if st.st_size == 0:
            return self._hold(path, EMPTY, st)
        fd = _open(path)
        if isinstance(fd, Verdict):
            if fd.state == HELD and fd.reason == LEASED:
                # Our open asked the holder to give its lease up (the kernel sends it a
                # break); the next attempt, a moment later, normally gets in.
                return self._hold(path, LEASED, st, due=self.clock() + WRITER_RECHECK_SECONDS)
            if fd.state == HELD:
                return self._settle(path, st, None, fd.reason)
            self.forget(path)
            return fd
        try:
            st = os.fstat(fd)              # the file we read, whatever happened to the name
            if not stat.S_ISREG(st.st_mode):
                self.forget(path)
                return Verdict(NOT_CANDIDATE, "not a regular file", None, NOT_CANDIDATE)
            extension = relative.rpartition(".")[2].lower()
            return self._decide(path, st, look_at(fd, st, extension, self.check_structure), closed)
        finally:
            os.close(fd)

    def _decide(self, path: str, st: os.stat_result, look: Look, closed: bool) -> Verdict:
        """The verdict on what a read of the file found."""
        if self.check_structure:
            if look.complete is False:
                if released(path, st):
                    self.forget(path)
                    return Verdict(FINISHED, f"released by the operator as it is ({look.reason})",
                                   st, FINISHED)
                return self._hold(path, look.reason + RELEASE_HINT, st)
            if look.complete is True:
                return self._finish_unless_writing(path, st, look.writer, look.reason)
            return self._settle(path, st, look.writer, look.reason)
        if closed:
            # No framing check (an odd producer): the writer's close is the evidence, as
            # the service always took it, unless someone still has the file open.
            return self._finish_unless_writing(path, st, look.writer, "closed by its writer")
        return self._settle(path, st, look.writer, "")

    def _finish_unless_writing(self, path: str, st: os.stat_result, writer: Optional[bool],
                               reason: str) -> Verdict:
        if writer:
            return self._hold(path, OPEN_FOR_WRITING, st,
                              due=self.clock() + max(self.settle_seconds, WRITER_RECHECK_SECONDS))
        self.forget(path)
        return Verdict(FINISHED, reason, st, FINISHED)

    def _settle(self, path: str, st: os.stat_result, writer: Optional[bool], why: str) -> Verdict:
        """Stability as the service saw it: unchanged for settle_seconds on its own clock.
        `writer`: whether the file was open for writing when read (None: cannot tell)."""
        now = self.clock()
        seen_as = identity(st)
        seen = self._seen.get(path)
        if seen is None or seen.identity != seen_as:
            seen = self._seen[path] = _Seen(seen_as, now)
        waited = now - seen.since
        detail = f" ({why})" if why else ""
        if waited < self.settle_seconds:
            return self._hold(path, f"{SETTLING}{detail}: waiting until it stays unchanged for "
                              f"{self.settle_seconds:g} s", st,
                              due=seen.since + self.settle_seconds, kind=HELD_SETTLING)
        if writer:
            return self._hold(path, OPEN_FOR_WRITING, st,
                              due=now + max(self.settle_seconds, WRITER_RECHECK_SECONDS))
        self.forget(path)
        return Verdict(FINISHED, f"unchanged for {waited:,.1f} s{detail}", st, FINISHED)

    def _hold(self, path: str, reason: str, st: Optional[os.stat_result],
              due: Optional[float] = None, kind: str = HELD_INCOMPLETE) -> Verdict:
        self.held[path] = reason
        if due is None:
            self._due.pop(path, None)
        elif self._due.get(path) != due:
            self._due[path] = due
            heapq.heappush(self._due_order, (due, path))
        if kind == HELD_SETTLING:
            self.settling.add(path)
        else:
            self.settling.discard(path)
            self._seen.pop(path, None)
        return Verdict(HELD, reason, st, kind)

    def kind_of(self, path: str) -> Optional[str]:
        """HELD_SETTLING or HELD_INCOMPLETE for a held path; None for any other."""
        if path not in self.held:
            return None
        return HELD_SETTLING if path in self.settling else HELD_INCOMPLETE

    # --- the loop's side ----------------------------------------------------------------

    def due(self) -> list[str]:
        """Held paths whose stability window may have completed: judge them again."""
        now = self.clock()
        order, due, ready = self._due_order, self._due, []
        while order and order[0][0] <= now:
            when, path = heapq.heappop(order)
            if due.get(path) == when:
                del due[path]
                ready.append(path)
        return ready

    def next_due(self) -> Optional[float]:
        """Monotonic time of the earliest due(), for the loop's timeout."""
        order, due = self._due_order, self._due
        while order and due.get(order[0][1]) != order[0][0]:
            heapq.heappop(order)            # stale: re-held with another time, or forgotten
        if len(order) > 2 * len(due) + 1024:
            self._due_order = order = [(when, path) for path, when in due.items()]
            heapq.heapify(order)            # forgotten paths' entries would pile up otherwise
        return order[0][0] if order else None

    def forget(self, path: str) -> None:
        """The path was registered, is gone, or was renamed away."""
        self.held.pop(path, None)
        self.settling.discard(path)
        self._seen.pop(path, None)
        self._due.pop(path, None)

    def forget_below(self, directory: str) -> None:
        prefix = directory.rstrip("/") + "/"
        for table in (self.held, self._seen, self._due):
            for path in [p for p in table if p.startswith(prefix)]:
                del table[path]
        self.settling = {p for p in self.settling if not p.startswith(prefix)}


def _open(path: str) -> "int | Verdict":
    """The file opened for reading its framing, or a Verdict: GONE, NOT_CANDIDATE, or HELD
    (cannot read it: the framing cannot be checked, stability decides)."""
    try:
        return os.open(path, OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return Verdict(GONE, "gone", None, GONE)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return Verdict(NOT_CANDIDATE, "not a regular file", None, NOT_CANDIDATE)
        if err.errno == errno.EWOULDBLOCK:
            # Another program holds a write lease (Samba's kernel oplocks): it has the file open.
            return Verdict(HELD, LEASED, None, HELD_INCOMPLETE)
        return Verdict(HELD, f"cannot read it to check its framing: {err.strerror}", None,
                       HELD_INCOMPLETE)
