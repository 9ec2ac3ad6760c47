"""The MySQL store's one background thread, where a write's COMMIT runs and an insert's every
statement: a commit's fsync (tens of ms, over 100 under heavy disk load such as an rm -rf of
a large tree) must not hold the service's loop, and the loop judges the next files while the
server writes these. The rows connection is the thread's until its write ends."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")


class CommitThread:
    """One write at a time under way on the thread; the store waits for it before the next."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout       # a write's longest wait: past it the connection is lost
        self._pool: Optional[ThreadPoolExecutor] = None
        self._under_way: Optional[Future] = None

    @property
    def busy(self) -> bool:
        """A write is still under way: wait() would wait for it."""
        return self._under_way is not None and not self._under_way.done()

    def start(self, work: Callable[..., T], *args: Any) -> Future[T]:
        """Run work(*args) on the thread as the write under way; the caller waited for the last."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-commit")
        self._under_way = self._pool.submit(work, *args)
        return self._under_way

    def wait(self) -> None:
        """Wait for the write under way, then forget it: its error (or TimeoutError) is raised
        here, once."""
        under_way, self._under_way = self._under_way, None
        if under_way is not None:
            under_way.result(timeout=self.timeout)

    def settle(self) -> None:
        """Wait, whatever the write's end: the connection is about to close, and it is the
        write's until then. What landed is read back on reconnecting."""
        try:
            self.wait()
        except Exception:
            pass
