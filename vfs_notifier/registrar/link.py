"""The registrar's link to the store: connected or not, why not, and when to try again
(a backoff that doubles from BACKOFF_FIRST to BACKOFF_MAX while attempts fail)."""

from __future__ import annotations

from typing import Optional

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0


class Link:
    def __init__(self) -> None:
        self.connected = False
        self.problem = ""
        self.retry_at = 0.0
        self._backoff = BACKOFF_FIRST
        self._said = ""

    def may_try(self, now: float) -> bool:
        return not self.connected and now >= self.retry_at

    def up(self) -> None:
        self.connected, self.problem = True, ""

    def worked(self) -> None:
        """A write went through: the next failure is news again, retried soon."""
        self._backoff, self._said = BACKOFF_FIRST, ""

    def down(self, problem: str, now: float) -> Optional[float]:
        """The store failed. Returns the seconds until the next attempt when the problem is
        news (to be said once), else None."""
        news = problem != self._said
        self._said = problem
        backoff = self._backoff
        self.connected, self.problem = False, problem
        self.retry_at = now + backoff
        self._backoff = min(backoff * 2, BACKOFF_MAX)
        return backoff if news else None
