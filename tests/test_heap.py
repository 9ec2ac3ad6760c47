"""release_freed_memory: what a walk or a burst freed is given back, measured in this process."""

from vfs_notifier.heap import release_freed_memory


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
