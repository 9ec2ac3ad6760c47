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


def _columns(entries):
    """(video_id, path, Version) entries as the store's batches of columns."""
    video_ids, paths, versions = zip(*entries)
    return (list(video_ids), list(paths), *map(list, zip(*versions)))


def test_fill_builds_what_puts_build(merged_bits):
    rng = random.Random(11)
    # Two roots, paths of neither (a copy's), and paths given twice (the last one counts).
    paths = [f"/{rng.choice(['r', 's', 'copies'])}/d{i % 31}/f {i}.mp4" for i in range(5000)]
    entries = [(i, rng.choice(paths), Version(rng.randrange(2**63), rng.randrange(2**63), i * 3, 10**18 + i))
               for i in range(9000)]
    put = VersionMemory(["/r", "/s"])
    for video_id, path, version in entries:
        put.put(path, version, video_id)
    put.merge()
    filled = VersionMemory(["/r", "/s"])
    filled.fill(_columns(entries[i:i + 1000]) for i in range(0, len(entries), 1000))
    assert (filled._keys, filled._content, filled._identity, filled._ids) == (
        put._keys, put._content, put._identity, put._ids)
    assert len(filled) == len(put) == len({path for _, path, _ in entries})
    assert filled.below == put.below and filled.count_below("/r") > 0
    for path in paths:
        assert filled.get(path) == put.get(path)
    # And it goes on like any memory: a change is seen, then merged.
    filled.put(paths[0], Version(1, 2, 3, 4), 77)
    filled.merge()
    assert filled.get(paths[0]) == (content_of(Version(1, 2, 3, 4)), identity_of(Version(1, 2, 3, 4)), 77)


def test_fill_of_nothing_and_only_into_an_empty_memory():
    memory = VersionMemory(["/r"])
    memory.fill([])
    assert len(memory) == 0 and memory.get("/r/a.mp4") is None
    memory.put("/r/a.mp4", Version(1, 2, 3, 4), 1)
    with pytest.raises(ValueError):
        memory.fill([])


def test_holds_says_whether_an_lstat_is_the_remembered_version(tmp_path):
    path = tmp_path / "a.mp4"
    path.write_bytes(b"video")
    st = path.lstat()
    memory = VersionMemory([str(tmp_path)])
    memory.put(str(path), Version(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns), 1)
    path.write_bytes(b"longer video")
    for merged in (False, True):   # a recent change, then one in the arrays
        if merged:
            memory.merge()
        assert memory.holds(str(path), st)
        assert not memory.holds(str(path), path.lstat())
        assert not memory.holds(str(tmp_path / "b.mp4"), st)
    memory.remove(str(path))
    assert not memory.holds(str(path), st)


def test_only_below_keeps_the_entries_of_the_prefixes():
    from vfs_notifier.memory import only_below
    mine = ([1, 2], ["/r/a.mp4", "/c/b.mp4"], [5, 5], [7, 8], [9, 9], [3, 4])
    all_mine = ([3], ["/r/c.mp4"], [5], [9], [9], [5])
    assert list(only_below([mine, all_mine], ("/r/", "/c/"))) == [mine, all_mine]
    assert list(only_below([mine, all_mine], ("/r/",))) == [([1], ["/r/a.mp4"], [5], [7], [9], [3]), all_mine]
    assert list(only_below([all_mine], ("/s/",))) == [([], [], [], [], [], [])]
