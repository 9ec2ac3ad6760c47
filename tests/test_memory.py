"""The memory of registered versions against a plain dict doing the same operations."""

from __future__ import annotations

import random

import pytest

from vfs_notifier import memory as memory_module
from vfs_notifier.memory import VersionMemory, content_of, identity_of
from vfs_notifier.store import Version


@pytest.fixture(params=["1 Mbit", "64 bits"])
def merged_bits(request, monkeypatch):
    """The bitmap of merged keys as shipped, and so small that nearly every key shares a
    bit with another (a bit set for a key not there must only cost a search)."""
    if request.param == "64 bits":
        monkeypatch.setattr(memory_module, "_BITS", 64)
        monkeypatch.setattr(memory_module, "_BYTE_OF", 7)


def test_agrees_with_a_dict_through_merges(merged_bits):
    rng = random.Random(7)
    memory = VersionMemory(["/r", "/s"])
    model: dict[str, tuple[Version, int]] = {}
    paths = [f"/{rng.choice('rs')}/d{i % 97}/f{i}.mp4" for i in range(20000)]
    for step in range(60000):
        path = rng.choice(paths)
        if rng.random() < 0.7:
            version = Version(1, rng.randrange(10**9), rng.randrange(10**6), rng.randrange(10**18))
            memory.put(path, version, step)
            model[path] = (version, step)
        else:
            memory.remove(path)
            model.pop(path, None)
        if step % 9973 == 0:
            memory.merge()
    assert len(memory) == len(model)
    for path in paths:
        entry = memory.get(path)
        if path in model:
            version, video_id = model[path]
            assert entry == (content_of(version), identity_of(version), video_id)
        else:
            assert entry is None
    assert memory.count_below("/r") == sum(1 for p in model if p.startswith("/r/"))
    assert memory.count_below("/s") == sum(1 for p in model if p.startswith("/s/"))
