"""inotify_queue alone: the reader thread on a real inotify fd with real events, no parsing."""

from __future__ import annotations

import select
import time

import pytest

from vfs_notifier.inotify_queue import KernelQueue
from vfs_notifier.inotify_watches import Watches


@pytest.fixture
def kernel(tmp_path):
    """A watched directory, and a way to start a KernelQueue on its inotify fd."""
    watches = Watches()
    assert watches.watch(str(tmp_path), is_root=True) is None
    started: list[KernelQueue] = []

    def start(**options) -> KernelQueue:
        started.append(KernelQueue(watches.fd(), **options))
        return started[-1]

    yield start
    for queue in started:
        queue.stop()
    watches.close()
    for queue in started:
        queue.close()


def readable(queue: KernelQueue, wait: float = 0.0) -> bool:
    poller = select.poll()
    poller.register(queue.fileno(), select.POLLIN)
    return bool(poller.poll(wait * 1000))


def write_batches(directory, batches: int, per_batch: int) -> None:
    """Files in batches far enough apart in time to land in separate chunks."""
    for batch in range(batches):
        for index in range(per_batch):
            (directory / f"b{batch}-{index:04d}.mp4").write_bytes(b"x")
        time.sleep(0.05)


def test_a_read_takes_its_budget_and_the_rest_stays_readable(kernel, tmp_path):
    queue = kernel()
    write_batches(tmp_path, batches=3, per_batch=50)
    assert readable(queue, wait=2) and queue.pending
    total = sum(len(chunk) for chunk in queue.chunks)
    first = list(queue.take(budget=1))                  # one chunk at least, and only one
    assert len(first) == 1 and 0 < len(first[0]) < total
    assert queue.pending and readable(queue)            # woken again for the rest
    rest = list(queue.take(budget=1 << 30))
    assert len(first[0]) + sum(len(chunk) for chunk in rest) == total
    assert not queue.pending and not readable(queue)


def test_past_its_limit_the_reader_drops_and_marks_each_run_of_drops_once(kernel, tmp_path):
    queue = kernel(buffer_limit=4096)
    write_batches(tmp_path, batches=4, per_batch=200)  # ~10 kB of events a batch, nobody taking
    time.sleep(0.3)
    chunks = list(queue.take(budget=1 << 30))
    assert None in chunks
    assert not any(a is None and b is None for a, b in zip(chunks, chunks[1:]))
    assert sum(len(chunk) for chunk in chunks if chunk) <= 4096
    # Taken out, the room is there again: new events are kept.
    (tmp_path / "after.mp4").write_bytes(b"x")
    assert readable(queue, wait=2)
    assert all(chunk is not None for chunk in queue.take(budget=1 << 30))


def test_the_loop_is_woken_at_the_time_it_asked_for(kernel):
    queue = kernel()
    asked = time.monotonic() + 0.2
    queue.wake_at(asked)
    assert not readable(queue, wait=0.1)
    assert readable(queue, wait=2)
    assert time.monotonic() >= asked and not queue.pending       # no events: only the wake-up
    assert list(queue.take(budget=1)) == [] and not readable(queue)


def test_stop_ends_the_reader_thread(kernel):
    queue = kernel()
    queue.stop()
    assert not queue._reader.is_alive()
