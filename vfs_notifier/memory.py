"""The memory of registered versions: which file version each registered path was, and its row.

The registrar asks it, for every candidate, "is this path registered, and as this very
version?" without a query. It must stay small at 100,000 files and more, so a path is kept
as its 64-bit hash, a version as two 64-bit fingerprints (content: size and mtime;
identity: device and inode), and all of it in sorted arrays of machine integers (32 bytes
an entry) rather than Python objects (over 200). Changes go to a small dict first and are
merged into the arrays now and then. Two paths sharing a hash (odds about 3 in 10^10 at
100,000 files) would make one of them look registered.

What lies below a directory is asked of the store, which has the paths; only counts per
root are kept here.
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_left
from itertools import compress, repeat
from operator import itemgetter, mul, ne, not_
from typing import Iterable, Iterator, NamedTuple, Optional

from .store import Columns, Version

_MASK = (1 << 63) - 1
# Changes are merged into the arrays once there are an eighth as many as entries (so an
# entry is copied a few times at most), but at least _MERGE_AT and at most _MERGE_MAX: a
# merge is one stretch of the loop at ~5 µs a change. Alone, 12,500 changes merged into
# 100,000 entries took 65 ms, 8,192 took 44 ms (on the slowest machine seen).
_MERGE_AT = 4096
_MERGE_MAX = 8192
# A bit per low 20 bits of a key, set for every key merged into the arrays (never cleared:
# a removed key's bit only costs a search). Most paths asked about in a cold start or a
# burst are new: one bit answers "not in the arrays" where a search of 100,000 keys costs
# 17 probes (128 KB; past a million files nearly every bit is set and it answers nothing).
_BITS = 1 << 20
_BYTE_OF = (_BITS >> 3) - 1
_masked = _MASK.__and__


def content_of(version: Version) -> int:
    """What says "the bytes changed": size and modification time."""
    return hash((version.size, version.mtime_ns)) & _MASK


def identity_of(version: Version) -> int:
    """Which file it is: device and inode."""
    return hash((version.dev, version.ino)) & _MASK


class Entry(NamedTuple):
    content: int
    identity: int
    video_id: int


def is_version(entry: Optional[Entry], version: Version) -> bool:
    """True when a remembered entry stands for this very version (same bytes, same file)."""
    return (entry is not None and entry.content == content_of(version)
            and entry.identity == identity_of(version))


class VersionMemory:
    def __init__(self, roots: Iterable[str]) -> None:
        self._keys = array("q")
        self._content = array("q")
        self._identity = array("q")
        self._ids = array("q")
        self._merged = bytearray(_BITS >> 3)
        self._delta: dict[int, Optional[Entry]] = {}   # None: removed since the last merge
        self._size = 0
        self._prefixes = tuple(root.rstrip("/") + "/" for root in roots)
        self.below: dict[str, int] = {prefix: 0 for prefix in self._prefixes}

    def __len__(self) -> int:
        return self._size

    def get(self, path: str) -> Optional[Entry]:
        # Asked several times per new file: the search of _in_arrays is inlined here.
        key = hash(path) & _MASK
        delta = self._delta
        if key in delta:
            return delta[key]
        if not self._merged[(key >> 3) & _BYTE_OF] & (1 << (key & 7)):
            return None
        keys = self._keys
        at = bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            return Entry(self._content[at], self._identity[at], self._ids[at])
        return None

    def holds(self, path: str, st: os.stat_result) -> bool:
        """The entry of `path` is this very version (`st`: its lstat). A walk asks it of every
        file: no Version or Entry made."""
        key = hash(path) & _MASK
        delta = self._delta
        if key in delta:
            entry = delta[key]
            return (entry is not None and entry.content == hash((st.st_size, st.st_mtime_ns)) & _MASK
                    and entry.identity == hash((st.st_dev, st.st_ino)) & _MASK)
        if not self._merged[(key >> 3) & _BYTE_OF] & (1 << (key & 7)):
            return False    # a new file (a cold start's): no search
        keys = self._keys
        at = bisect_left(keys, key)
        return (at < len(keys) and keys[at] == key
                and self._content[at] == hash((st.st_size, st.st_mtime_ns)) & _MASK
                and self._identity[at] == hash((st.st_dev, st.st_ino)) & _MASK)

    def put(self, path: str, version: Version, video_id: int) -> None:
        self.put_entry(path, Entry(content_of(version), identity_of(version), video_id))

    def put_entry(self, path: str, entry: Entry) -> None:
        key = hash(path) & _MASK
        delta = self._delta
        if delta.get(key) is None if key in delta else not self._in_arrays(key):
            self._size += 1
            self._count(path, 1)
        delta[key] = entry
        if len(delta) >= _MERGE_AT:
            self._maybe_merge()

    def _in_arrays(self, key: int) -> bool:
        if not self._merged[(key >> 3) & _BYTE_OF] & (1 << (key & 7)):
            return False
        keys = self._keys
        at = bisect_left(keys, key)
        return at < len(keys) and keys[at] == key

    def remove(self, path: str) -> None:
        key = hash(path) & _MASK
        if self.get(path) is None:
            return
        self._size -= 1
        self._count(path, -1)
        if not self._in_arrays(key):
            del self._delta[key]
        else:
            self._delta[key] = None
        self._maybe_merge()

    def fill(self, batches: Iterable[Columns]) -> None:
        """Every entry at once, into an empty memory: a restart's read of the store. The
        arrays are built in one go and sorted once, the hashing done column by column in C:
        put() costs a Python call per entry and merges the arrays again every few thousand
        (at a million entries, a hundred copies of the whole). A path given twice keeps its
        last entry, as with put()."""
        if self._size or self._delta:
            raise ValueError("fill() is for an empty memory")
        keys, content, identity, ids = array("q"), array("q"), array("q"), array("q")
        # Per entry, which root it is below: the weight of its root (the first root counts
        # most, as _count() takes the first that matches), 0 for none.
        where = bytearray()
        weights = range(len(self._prefixes), 0, -1)
        for video_ids, paths, devs, inos, sizes, mtimes in batches:
            keys.extend(map(_masked, map(hash, paths)))
            content.extend(map(_masked, map(hash, zip(sizes, mtimes))))
            identity.extend(map(_masked, map(hash, zip(devs, inos))))
            ids.extend(video_ids)
            found = bytes(len(paths))
            for prefix, weight in zip(self._prefixes, weights):
                hits = map(mul, map(str.startswith, paths, repeat(prefix)), repeat(weight))
                found = bytes(map(max, found, hits))
            where += found
        # Stable: of the entries sharing a key, the last given ends its run.
        order = sorted(range(len(keys)), key=keys.__getitem__)
        keys = _gather(keys, order)
        if len(keys) > 1:
            last = list(map(ne, keys[:-1], keys[1:]))
            last.append(True)
            if not all(last):
                for dropped in compress(order, map(not_, last)):
                    where[dropped] = 0      # counted once, with the entry kept
                order = list(compress(order, last))
                keys = array("q", compress(keys, last))
        for prefix, weight in zip(self._prefixes, weights):
            self.below[prefix] = where.count(weight)
        del where
        self._keys = keys
        self._content = _gather(content, order)
        del content
        self._identity = _gather(identity, order)
        del identity
        self._ids = _gather(ids, order)
        self._size = len(keys)
        merged = self._merged
        for key in keys:
            merged[(key >> 3) & _BYTE_OF] |= 1 << (key & 7)

    def count_below(self, root: str) -> int:
        return self.below.get(root.rstrip("/") + "/", 0)

    def _count(self, path: str, step: int) -> None:
        for prefix in self._prefixes:
            if path.startswith(prefix):
                self.below[prefix] += step
                return

    def _maybe_merge(self) -> None:
        if len(self._delta) >= max(_MERGE_AT, min(len(self._keys) >> 3, _MERGE_MAX)):
            self.merge()

    def merge(self) -> None:
        """Fold the recent changes into the sorted arrays (linear in the entries)."""
        if not self._delta:
            return
        keys, content, identity, ids = array("q"), array("q"), array("q"), array("q")
        changes = sorted(self._delta.items())
        old, old_content, old_identity, old_ids = self._keys, self._content, self._identity, self._ids
        merged = self._merged
        i = 0
        for key, entry in changes:
            # copy the unchanged run before this key
            j = bisect_left(old, key, i)
            if j > i:
                keys.extend(old[i:j])
                content.extend(old_content[i:j])
                identity.extend(old_identity[i:j])
                ids.extend(old_ids[i:j])
            i = j + 1 if j < len(old) and old[j] == key else j
            if entry is not None:
                keys.append(key)
                content.append(entry.content)
                identity.append(entry.identity)
                ids.append(entry.video_id)
                merged[(key >> 3) & _BYTE_OF] |= 1 << (key & 7)
        keys.extend(old[i:])
        content.extend(old_content[i:])
        identity.extend(old_identity[i:])
        ids.extend(old_ids[i:])
        self._keys, self._content, self._identity, self._ids = keys, content, identity, ids
        self._delta = {}


def _gather(values: array, order: list[int]) -> array:
    """values[i] for every i of order, as a new array (through a list: an array's own
    indexing makes an int object per element, and took half again as long)."""
    if not order:
        return array("q")
    return array("q", itemgetter(*order)(values.tolist()) if len(order) > 1 else [values[order[0]]])


def only_below(batches: Iterable[Columns], prefixes: tuple[str, ...]) -> Iterator[Columns]:
    """The entries of paths below `prefixes` (another instance's rows share the table)."""
    for batch in batches:
        paths = batch[1]
        keep = list(map(str.startswith, paths, repeat(prefixes, len(paths))))
        yield batch if all(keep) else tuple(list(compress(column, keep)) for column in batch)  # type: ignore[misc]
