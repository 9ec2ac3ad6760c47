"""Copy mode's workers: a few threads copying files (copy_file.py) behind a bounded queue.

A full disk or a permission problem is logged once per problem (not once per file
or per retry), the file is retried with backoff and never dropped, and the other
copies go on. One worker takes only small files, so a 20 GB copy never holds up the
small ones queued behind it. Temporary files a killed process left behind are removed
before the first copy starts.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from .copy_file import SourceGone, Stopped, copy_file, remove_stale_temporaries
from .rows import printable

log = logging.getLogger("vfs_notifier")

SMALL_BYTES = 256 * 1024 * 1024
WORKERS, LIMIT = 2, 10000
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
# Problems of the whole destination file system: one line for all files that meet them.
WHOLE_FILE_SYSTEM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


@dataclass
class _Job:
    source: str
    destination: str
    token: Any
    size: int
    attempts: int = 0
    not_before: float = 0.0
    running: bool = False
    again: bool = False             # submitted again while running: copy once more afterwards
    problem: Optional[tuple] = field(default=None)


class Copier:
    """A small pool of copy workers behind a bounded queue, read by one other thread.

    `submit` from the service's loop; `completed()` and `failed()` hand back what the
    workers finished, and `fileno()` becomes readable when there is something to hand back.
    """

    def __init__(self, clean_below: str = "", workers: int = WORKERS, limit: int = LIMIT,
                 small_bytes: int = SMALL_BYTES, backoff_first: float = BACKOFF_FIRST,
                 backoff_max: float = BACKOFF_MAX) -> None:
        self.limit, self.small_bytes = limit, small_bytes
        self.backoff_first, self.backoff_max = backoff_first, backoff_max
        self._lock = threading.Condition()
        self._jobs: dict[str, _Job] = {}          # destination -> job, until completed or failed
        self._ready: deque[_Job] = deque()
        self._waiting: list[_Job] = []            # failed for now; retried at not_before
        self._completed: list[tuple[Any, str]] = []
        self._failed: list[tuple[Any, str]] = []
        self._problems: dict[tuple, str] = {}     # problem key -> the line that announced it
        self._stop = threading.Event()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._cleaned = threading.Event()
        self._clean_below = clean_below
        # Worker 0 copies only small files; the others take anything, oldest first.
        self._threads = [threading.Thread(target=self._work, args=(index == 0 and workers > 1,),
                                          name=f"vfs-notifier-copy-{index}", daemon=True)
                         for index in range(max(1, workers))]
        self._threads.append(threading.Thread(target=self._clean, name="vfs-notifier-copy-clean",
                                              daemon=True))
        for thread in self._threads:
            thread.start()

    # --- the service's side ------------------------------------------------------------

    def submit(self, source: str, destination: str, token: Any) -> bool:
        """Queue a copy; False (nothing queued) when the queue is full. A destination already
        queued takes the newer source and token, and one being copied is copied again."""
        try:
            size = os.stat(source).st_size
        except OSError:
            size = 0   # the worker finds out what is wrong with it
        with self._lock:
            job = self._jobs.get(destination)
            if job is not None:
                job.source, job.token, job.size = source, token, size
                if job.running:
                    job.again = True
                return True
            if len(self._jobs) >= self.limit:
                return False
            job = _Job(source, destination, token, size)
            self._jobs[destination] = job
            self._ready.append(job)
            self._lock.notify_all()
        return True

    def completed(self) -> list[tuple[Any, str]]:
        """(token, destination) of each copy now in place, once each."""
        self._drain()
        with self._lock:
            done, self._completed = self._completed, []
        return done

    def failed(self) -> list[tuple[Any, str]]:
        """(token, reason) of each copy given up for good: its source went away. Copies that
        meet a disk or permission problem are retried, never reported here."""
        with self._lock:
            lost, self._failed = self._failed, []
        return lost

    @property
    def pending(self) -> int:
        """Copies accepted and not yet handed back by completed() or failed()."""
        with self._lock:
            return len(self._jobs) + len(self._completed) + len(self._failed)

    @property
    def full(self) -> bool:
        with self._lock:
            return len(self._jobs) >= self.limit

    @property
    def problems(self) -> list[str]:
        """The problems being retried now, as announced."""
        with self._lock:
            return list(self._problems.values())

    def fileno(self) -> int:
        """Readable when completed() or failed() has something."""
        return self._wake_read

    def close(self, timeout: float = 30.0) -> None:
        """Stop: a copy in progress is abandoned (its temporary file removed) and queued ones
        dropped; the next start's walk finds their sources again."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        os.close(self._wake_read)
        os.close(self._wake_write)

    # --- the workers' side ---------------------------------------------------------------

    def _clean(self) -> None:
        try:
            if self._clean_below and os.path.isdir(self._clean_below):
                removed = remove_stale_temporaries(self._clean_below)
                if removed:
                    log.info("removed %d temporary copies left below %s by an earlier run "
                             "(their files are copied again)", removed, printable(self._clean_below))
        except Exception:   # noqa: BLE001 - a failed clean-up must not stop copying
            log.exception("cleaning stale temporary copies failed")
        finally:
            self._cleaned.set()

    def _work(self, small_only: bool) -> None:
        self._cleaned.wait()
        while not self._stop.is_set():
            job = self._take(small_only)
            if job is None:
                continue
            try:
                how = copy_file(job.source, job.destination, self._stop)
            except Stopped:
                return
            except SourceGone as gone:
                self._finish(job, failed=str(gone))
            except OSError as err:
                self._retry(job, err)
            except Exception as err:   # noqa: BLE001 - one bad file must not end a worker
                log.exception("copying %s failed", printable(job.source))
                self._retry(job, OSError(errno.EIO, str(err)))
            else:
                log.debug("copied %s to %s (%s)", printable(job.source), printable(job.destination), how)
                self._finish(job)

    def _take(self, small_only: bool) -> Optional[_Job]:
        with self._lock:
            now = time.monotonic()
            for job in [j for j in self._waiting if j.not_before <= now]:
                self._waiting.remove(job)
                self._ready.append(job)
            for job in self._ready:
                if not small_only or job.size <= self.small_bytes:
                    self._ready.remove(job)
                    job.running = True
                    return job
            waits = [j.not_before - now for j in self._waiting]
            self._lock.wait(min(waits) if waits else 1.0)
        return None

    def _finish(self, job: _Job, failed: str = "") -> None:
        with self._lock:
            job.running = False
            if job.again:
                job.again = False
                self._ready.append(job)
                self._lock.notify_all()
                return
            del self._jobs[job.destination]
            if failed:
                self._failed.append((job.token, failed))
            else:
                self._completed.append((job.token, job.destination))
            self._cleared(job, succeeded=not failed)
        self._wake()

    def _retry(self, job: _Job, err: OSError) -> None:
        key = _problem_key(job, err)
        with self._lock:
            job.running, job.again = False, False
            job.attempts += 1
            delay = min(self.backoff_max, self.backoff_first * 2 ** (job.attempts - 1))
            job.not_before = time.monotonic() + delay
            job.problem = key
            self._waiting.append(job)
            announce = key not in self._problems
            if announce:
                line = _describe(job, err, delay, self.backoff_max)
                self._problems[key] = line
        if announce:
            log.error("%s", line)
        else:
            log.debug("copy of %s to %s still fails: %s", printable(job.source),
                      printable(job.destination), err.strerror or err)

    def _cleared(self, job: _Job, succeeded: bool) -> None:
        """A copy that had a problem is done: once no copy waits with that problem any more,
        it is over (lock held). Another file's success proves nothing: a small file fits
        where a large one does not."""
        key = job.problem
        if key is None or key not in self._problems:
            return
        if any(other.problem == key for other in self._jobs.values()):
            return
        del self._problems[key]
        if succeeded:
            log.info("copying works again (was: %s)", key[2])

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"\0")
        except (BlockingIOError, OSError):
            pass   # full pipe: a wake-up is pending anyway; closed: stopping

    def _drain(self) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except (BlockingIOError, OSError):
            pass


def _problem_key(job: _Job, err: OSError) -> tuple:
    """Which problem a failure is, so that a thousand files meeting it give one log line:
    per file system for a full or read-only disk, per directory otherwise."""
    reason = err.strerror or str(err)
    if err.errno in WHOLE_FILE_SYSTEM:
        return (err.errno, "", reason)
    where = err.filename if isinstance(err.filename, str) else job.destination
    return (err.errno, os.path.dirname(where), reason)


def _describe(job: _Job, err: OSError, delay: float, backoff_max: float) -> str:
    side = "reading" if err.filename == job.source else "writing"
    reason = err.strerror or str(err)
    hint = ""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            fs = os.statvfs(os.path.dirname(job.destination))
            hint = f" ({fs.f_bavail * fs.f_frsize // 1048576} MB free, this file needs " \
                   f"{job.size // 1048576 + 1} MB)"
        except OSError:
            pass
    return (f"cannot copy {printable(job.source)} to {printable(job.destination)}: {side}: "
            f"{reason}{hint}; it and every copy meeting the same problem are kept and retried "
            f"(after {delay:g} s, then up to every {backoff_max:g} s) until it is solved")
