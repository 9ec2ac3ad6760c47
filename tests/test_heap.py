"""release_freed_memory: what a walk or a burst freed is given back, measured in this process."""

from vfs_notifier.heap import ReleaseWhenIdle, release_freed_memory


def test_freed_heap_goes_back_to_the_system():
    def rss_kb() -> int:
        return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])

    blocks = [bytearray(600) for _ in range(100_000)]       # 60 MB of heap
    pin = bytearray(600)          # allocated above them: their freeing leaves a hole, not a top
    del blocks
    before = rss_kb()
    assert release_freed_memory()
    assert rss_kb() < before - 20 * 1024
    assert len(pin) == 600


def test_released_once_when_idle_after_work():
    released = []
    heap = ReleaseWhenIdle(2.0, release=lambda: released.append(1) or True)
    assert not heap.idle(100.0) and heap.due is None          # nothing done: nothing to give
    heap.worked(100.0)
    assert not heap.idle(101.0)                               # idle 1 s: not yet
    heap.worked(101.5)                                        # work again: the wait restarts
    assert not heap.idle(103.0)
    assert heap.idle(103.5) and released == [1]
    assert not heap.idle(110.0) and released == [1]           # once, until the next work
