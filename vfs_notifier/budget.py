"""The turn's budget: how much one loop turn may still do.

The service's loop and the one-shot commands (scan, pending) each own one per turn; the gate
charges every unit of its work to it, so that a walk of any size is resumable and the loop
stays responsive.
"""

from __future__ import annotations

import time


class Budget:
    """How much one loop turn may still do; checked by the clock every few units."""

    def __init__(self, seconds: float, clock=time.monotonic) -> None:
        self.clock = clock
        self.deadline = clock() + seconds
        self._units = 0
        self.spent = False      # a walk step was taken this turn

    def spend(self, units: int = 1) -> bool:
        """Charge work; False once the turn's time is up."""
        self._units += units
        if self._units >= 32:
            self._units = 0
            return self.clock() < self.deadline
        return True

    @property
    def left(self) -> bool:
        return self.clock() < self.deadline

    @property
    def remaining(self) -> float:
        """Seconds left in the turn (negative once it ran over)."""
        return self.deadline - self.clock()

