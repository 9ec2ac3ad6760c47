"""The reader thread: moves the kernel's queued inotify events into memory as they come.

The kernel's queue (fs.inotify.max_queued_events) is small; a thread that does nothing but
read it keeps it from filling while the loop is busy writing rows, so a burst costs no
overflow and no reconcile. The loop waits on fileno() and takes the raw bytes in chunks of
a bounded size per turn; parsing them is inotify_events' job.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from typing import Iterator, Optional

READ_SIZE = 128 << 10
GATHER_SECONDS = 0.002
# Past this many bytes of unread events the reader thread drops what it reads and the loop
# is told OVERFLOW, as the kernel does when its own queue is full: the service reconciles.
BUFFER_LIMIT = 64 << 20


class KernelQueue:
    """The raw events read from one inotify fd, waiting for the loop."""

    def __init__(self, inotify_fd: int, buffer_limit: int = BUFFER_LIMIT) -> None:
        # None in it marks where the reader dropped events because the deque held
        # `buffer_limit` bytes.
        self.chunks: deque[Optional[bytes]] = deque()
        self._buffer_limit = buffer_limit
        self._appended = 0                 # bytes appended, written by the reader thread only
        self._taken = 0                    # bytes taken out, written by take() only
        self._wake_loop_at = 0.0           # when the reader thread must wake the loop unasked
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._control_read, self._control_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._reader = threading.Thread(target=self._drain_kernel_queue, args=(inotify_fd,),
                                        name="inotify-reader", daemon=True)
        self._reader.start()

    # --- the reader thread ---------------------------------------------------------------

    def _drain_kernel_queue(self, inotify_fd: int) -> None:
        poller = select.poll()
        poller.register(inotify_fd, select.POLLIN)
        poller.register(self._control_read, select.POLLIN)
        dropping = False
        wake_at: Optional[float] = None
        while True:
            timeout = None if wake_at is None else max(0.0, (wake_at - time.monotonic()) * 1000)
            ready = poller.poll(timeout)
            if not ready:                  # the time asked for by wake_at() has come
                wake_at = None
                self.wake()
                continue
            for fd, _ in ready:
                if fd == self._control_read:
                    orders = os.read(self._control_read, 512)
                    if b"q" in orders:
                        return
                    wake_at = self._wake_loop_at
                    continue
                try:
                    data = os.read(inotify_fd, READ_SIZE)
                except OSError:
                    return
                if self._appended - self._taken + len(data) > self._buffer_limit:
                    if not dropping:       # one marker per run of dropped reads
                        dropping = True
                        self.chunks.append(None)
                else:
                    dropping = False
                    self._appended += len(data)
                    self.chunks.append(data)
                # A wake-up after every append, never "only if it was empty": the loop may
                # empty the deque between such a check and the append, and then no wake-up
                # would ever come again (docs/HISTORY.md).
                self.wake()
                # Let events gather: waking per event in a burst (100,000 a second) costs
                # more than it moves. The kernel's queue takes >100 ms to fill at that rate.
                time.sleep(GATHER_SECONDS)

    # --- the loop's side -----------------------------------------------------------------

    def fileno(self) -> int:
        """Readable when chunks are waiting for take()."""
        return self._wake_read

    def wake(self) -> None:
        """Make fileno() readable."""
        try:
            os.write(self._wake_write, b"!")
        except BlockingIOError:
            pass  # the pipe is full: the loop has wake-ups pending already

    def wake_at(self, when: float) -> None:
        """Make fileno() readable at time.monotonic() `when`, if nothing else does first."""
        if when != self._wake_loop_at:
            self._wake_loop_at = when
            self._order(b"t")

    @property
    def pending(self) -> bool:
        return bool(self.chunks)

    def take(self, budget: int) -> Iterator[Optional[bytes]]:
        """The waiting chunks, oldest first, until about `budget` bytes are taken; None where
        the reader dropped events. fileno() stays readable while more are waiting."""
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass
        chunks = self.chunks
        taken = 0
        while chunks and taken < budget:
            data = chunks.popleft()
            if data is not None:
                self._taken += len(data)
                taken += len(data)
            yield data
        if chunks:
            self.wake()     # the rest next time

    def _order(self, order: bytes) -> None:
        try:
            os.write(self._control_write, order)
        except BlockingIOError:
            pass  # a full pipe: the reader thread is gone, or has orders enough to wake on

    def stop(self) -> None:
        """End the reader thread (before the inotify fd it reads is closed)."""
        self._order(b"q")
        self._reader.join(timeout=5)

    def close(self) -> None:
        for fd in (self._wake_read, self._wake_write, self._control_read, self._control_write):
            os.close(fd)
