"""The gate's read-ahead: files handed to the looker (a helper reading headers on the second
core) ahead of their judging, in a burst of closed files; judged once read, in the order asked.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Optional

from ..looker import Looker

if TYPE_CHECKING:
    from ..registrar import Registrar
    from ..watcher import Change

# With a looker: files asked of it and not answered, at most (past that the judge reads
# files itself), and how many changes must be waiting for a closed file to be asked (a lone
# file is read by the judge at once: a round trip to the looker would only add to its lag).
# The helper shares its core with the database server and wakes per request: 64 files
# ahead, the loop caught up with it and read a third of a cold start's files itself; 512
# ahead cut the cold start's CPU by 9 % and its time by 13 % (docs/PERFORMANCE-STRESS.md).
LOOK_AHEAD = 512
ASK_FROM = 16


class ReadAhead:
    """The looker's part of the gate (a mixin of Gate)."""

    looker: Optional[Looker]
    registrar: "Registrar"
    changes: "deque[Change]"
    closed_ahead: deque[str]
    ask_from: int

    @property
    def reading(self) -> bool:
        """Closed files wait for the looker to read them: the loop looks again soon."""
        return bool(self.closed_ahead)

    def finish_reading(self) -> None:
        """Judge every closed file asked of the looker (before a stop or a reload)."""
        closed_ahead = self.closed_ahead
        if closed_ahead:
            assert self.looker is not None
            self.looker.send()
        while closed_ahead:
            self.looker.wait_for(closed_ahead[0])
            self._judge_and_offer(closed_ahead.popleft(), closed=True, announce=True)

    def _judge_read_closed(self) -> None:
        """Judge the closed files the looker has read by now, in the order asked."""
        closed_ahead, looker = self.closed_ahead, self.looker
        while closed_ahead and looker.answered(closed_ahead[0]):
            self._judge_and_offer(closed_ahead.popleft(), closed=True, announce=True)

    def _judge_closed(self, path: str) -> None:
        """In a burst (ask_from changes or more waiting) the file is asked of the looker and
        judged once read, its lstat taken then (other changes may be handled meanwhile); where
        the looker already has LOOK_AHEAD files under way, the judge reads it here, so that
        both CPUs read and neither waits on the other."""
        looker = self.looker
        # Not while the store is away or stalled (an outage): reading ahead would only make
        # rows that cannot be written sooner, and start a process for it.
        registrar = self.registrar
        if (looker is not None and len(self.changes) >= self.ask_from and registrar.connected
                and not registrar.stalled and looker.backlog < LOOK_AHEAD and looker.ask(path)):
            self.closed_ahead.append(path)
        else:
            self._judge_and_offer(path, closed=True, announce=True)

