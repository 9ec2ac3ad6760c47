"""The looker: files read on a second core, so that the loop judges while they are read.

Reading a file's framing (open, fstat, a pread or two, the walk of its boxes, the lease
probe) is a third of what the loop spends on a new file, and the loop is one thread on one
core. In a cold start or a burst the gate knows which files it will judge next, so it hands
their paths to a helper process (`python3 -m vfs_notifier.looker`, started on first use)
that reads them in order and answers with a judge.Look for each.

A Look is only evidence: the judge gives the verdict, and uses a Look only for the very file
an lstat taken at judging time shows, unchanged (judge.identity). A file changed since it
was read is read again by the judge itself, so a Look that comes late or never (the helper
died, is slow, was never asked) costs time, never a file. Used where more than one CPU is
available to the service and the framing check is on: on one CPU the helper would only take
turns with the loop.

Protocol (looker_process.py is the other end): length-prefixed marshal frames on the
helper's stdin/stdout; a request is a list of paths, its answer the list of their Looks (a
tuple, or None: not a regular file, or not readable; the judge then looks itself).
"""

from __future__ import annotations

import fcntl
import functools
import logging
import marshal
import os
import select
import subprocess
import sys
import time
from collections import deque
from typing import Optional

from .judge import Look
from .looker_process import FRAME as _FRAME

log = logging.getLogger("vfs_notifier")

PATHS_PER_REQUEST = 64     # small: answers stream back while the loop judges
READY_MAX = 8192           # answers kept that nobody took (a file found registered already)
PIPE_BYTES = 1 << 20       # asked for; the kernel's default is 64 KB
READ_BYTES = 1 << 16       # read at a time: a 1 MB buffer a read would raise glibc's mmap
                           # threshold and stay in the heap (the loop's resident memory)
ANSWER_TIMEOUT = 5.0       # a helper silent this long is stopped, and the loop reads itself
IDLE_SECONDS = 2.0         # a helper unused this long is stopped (started again when needed)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_as_look = functools.partial(tuple.__new__, Look)   # Look(*fields) without its per-field call


# --- the loop's side --------------------------------------------------------------------

def worth_using(check_structure: bool) -> bool:
    """A second CPU to read on, and framing to read."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except OSError:
        cpus = os.cpu_count() or 1
    return check_structure and cpus > 1


class Looker:
    """The loop's handle on the helper: ask() for paths about to be judged, take() a path's
    Look when judging it (None while it is still on its way; wait_for() waits)."""

    def __init__(self, argv: Optional[list[str]] = None) -> None:
        # This very package, wherever it was imported from (a checkout, the .deb).
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # -S: no site packages to import (a smaller process); the package path is given.
        self.argv = argv or [sys.executable, "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                             "from vfs_notifier.looker_process import main; sys.exit(main())",
                             package_parent]
        self.proc: Optional[subprocess.Popen] = None
        self.broken = False
        self._batch: list[str] = []
        self._in_flight: deque[tuple[list[str], int]] = deque()
        self._asked: set[str] = set()          # paths under way
        self._ready: dict[str, Optional[tuple]] = {}
        self._dropped: set[str] = set()        # asked, then read by the judge itself
        self._buffer = b""
        # Requests written and not answered, in bytes: kept below what the pipe holds, so
        # that a write never blocks (the helper may be blocked writing answers meanwhile).
        self._unanswered = 0
        self._batch_bytes = 0
        self._pipe_bytes = 65536
        self.taken = self.unused = 0           # Looks the judge took / answers nobody took
        self.started = 0                       # helpers started (one a burst or a walk)
        self._last_used = 0.0

    def ask(self, path: str) -> bool:
        """Have `path` read now, for a take() soon; False if the helper cannot take it."""
        # A path's UTF-8 takes at most 4 bytes a character, and marshal adds 5.
        cost = 4 * len(path) + 5
        if self.broken:
            return False
        if path in self._asked or path in self._ready:
            # Asked already (a walk, then the file's close event): one read serves both. A
            # file changed since is read by the judge itself (the Look no longer matches).
            return True
        if self._unanswered + self._batch_bytes + cost > self._pipe_bytes - 4096:
            self.collect()      # answers read free their requests' room
            if self._unanswered + self._batch_bytes + cost > self._pipe_bytes - 4096:
                return False
        if self.proc is None and not self._start():
            return False
        self._batch.append(path)
        self._batch_bytes += cost
        self._last_used = time.monotonic()
        self._asked.add(path)
        if len(self._batch) >= PATHS_PER_REQUEST:
            self.send()
        return True

    def send(self) -> None:
        """Send what was asked and not sent yet (a part batch too: the judge wants it now)."""
        if not self._batch or self.broken:
            return
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        frame = marshal.dumps(batch)
        try:
            assert self.proc is not None and self.proc.stdin is not None
            data = memoryview(_FRAME.pack(len(frame)) + frame)
            while data:                     # fits in the pipe (see ask()): never waits long
                data = data[self.proc.stdin.write(data):]
        except OSError as err:
            self._fail(f"cannot write to it: {err.strerror or err}")
            return
        self._in_flight.append((batch, _FRAME.size + len(frame)))
        self._unanswered += _FRAME.size + len(frame)

    @property
    def backlog(self) -> int:
        """Paths asked and not answered yet."""
        return len(self._asked)

    def answered(self, path: str) -> bool:
        """Whether take(path) has its answer now (an unasked path: nothing to wait for)."""
        if path in self._asked and path not in self._batch:
            self.collect()
        return path not in self._asked

    def wait_for(self, path: str) -> None:
        """Wait until the answer for `path` is in (at most ANSWER_TIMEOUT)."""
        if path in self._batch:
            self.send()
        while path in self._asked and self._in_flight and not self.broken:
            self._receive(block=True)

    def take(self, path: str) -> Optional[Look]:
        """The Look asked for `path`; None if it was not asked, or the helper failed, or its
        answer is not in yet: the judge then reads the file itself, and the helper's answer,
        when it comes, is dropped. The loop never waits on a helper that fell behind it: that
        is what shares the reading between the two CPUs (wait_for() first to wait)."""
        if path not in self._ready and path in self._asked and not self.answered(path):
            self._dropped.add(path)
            return None
        found = self._ready.pop(path, None)
        if found is None:
            return None
        self.taken += 1
        return _as_look(found)

    def stop_due(self) -> Optional[float]:
        """Monotonic time at which an idle helper is to be stopped; None if none runs."""
        return None if self.proc is None else self._last_used + IDLE_SECONDS

    def stop_if_idle(self, now: float) -> bool:
        """Between bursts and walks the helper's memory is given back: it is stopped once
        unused for IDLE_SECONDS, with nothing under way. True if it was stopped now."""
        if self.proc is not None and now >= self._last_used + IDLE_SECONDS and not self._asked:
            self._stop()
            self._ready.clear()
            return True
        return False

    def collect(self) -> None:
        """Take in the answers that arrived, without waiting."""
        while self._in_flight and not self.broken and self._receive(block=False):
            pass

    def _receive(self, block: bool) -> bool:
        """Read what the helper sent; True if at least one whole answer came in."""
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            if not select.select([fd], [], [], ANSWER_TIMEOUT if block else 0)[0]:
                if block:
                    self._fail(f"no answer for {ANSWER_TIMEOUT:g} s")
                return False
            try:
                data = os.read(fd, READ_BYTES)
            except OSError as err:
                self._fail(f"cannot read from it: {err.strerror or err}")
                return False
            if not data:
                self._fail("it exited")
                return False
            buffer = self._buffer + data if self._buffer else data
            # Every whole answer in what was read, then the rest kept: one copy a read, not
            # one a frame (a read can bring hundreds of answers).
            offset, end, answered = 0, len(buffer), False
            while end - offset >= _FRAME.size:
                size = _FRAME.unpack_from(buffer, offset)[0]
                if end - offset - _FRAME.size < size:
                    break
                self._answered(marshal.loads(buffer[offset + _FRAME.size:offset + _FRAME.size + size]))
                offset += _FRAME.size + size
                answered = True
            self._buffer = buffer[offset:]
            if answered:
                return True

    def _answered(self, looks: list) -> None:
        batch, size = self._in_flight.popleft()
        self._unanswered -= size
        asked, ready = self._asked, self._ready
        dropped = self._dropped
        for path, found in zip(batch, looks):
            asked.discard(path)
            if path in dropped:
                dropped.discard(path)
                self.unused += 1
            elif found is not None:
                ready[path] = found
        if len(ready) > READY_MAX:
            # Answers for files the gate did not judge after all (registered already, or
            # renamed away): dropped oldest first, so they cannot pile up.
            for path in list(ready)[:len(ready) - READY_MAX // 2]:
                del ready[path]
                self.unused += 1

    def _start(self) -> bool:
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         bufsize=0, close_fds=True)
        except OSError as err:
            self._fail(f"cannot start it: {err.strerror or err}")
            return False
        self.started += 1
        self._buffer = b""
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                size = fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
            except OSError:
                size = 65536    # fewer paths under way at once, that is all
            if pipe is self.proc.stdin:
                self._pipe_bytes = size
        return True

    def _fail(self, why: str) -> None:
        """The loop reads every file itself from now on; nothing asked is lost (the judge
        reads what it does not get)."""
        if not self.broken:
            log.warning("the framing reader process failed (%s): the loop reads files itself", why)
        self.broken = True
        self._in_flight.clear()
        self._asked.clear()
        self._dropped.clear()
        self._batch.clear()
        self._unanswered = self._batch_bytes = 0
        self._stop()

    def close(self) -> None:
        self._stop()
        self._ready.clear()
        self._asked.clear()
        self._dropped.clear()
        self._in_flight.clear()
        self._unanswered = 0

    def _stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


