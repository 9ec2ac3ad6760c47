"""budget.Budget: a turn's time, checked by the clock every 32 units of work."""

from __future__ import annotations

from vfs_notifier.budget import Budget


class Clock:
    def __init__(self) -> None:
        self.now = 50.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


def test_spend_asks_the_clock_every_32_units() -> None:
    clock = Clock()
    budget = Budget(0.1, clock=clock)
    reads = clock.reads
    assert all(budget.spend() for _ in range(31)) and clock.reads == reads
    clock.now += 0.2                         # the turn is over; the next check says so
    assert budget.spend() is False and clock.reads == reads + 1


def test_left_and_remaining() -> None:
    clock = Clock()
    budget = Budget(0.5, clock=clock)
    assert budget.left and abs(budget.remaining - 0.5) < 1e-9
    clock.now += 0.75
    assert not budget.left and abs(budget.remaining + 0.25) < 1e-9


def test_a_zero_budget_allows_one_step_of_32() -> None:
    budget = Budget(0, clock=Clock())
    assert [budget.spend() for _ in range(32)] == [True] * 31 + [False]
    assert budget.spent is False
