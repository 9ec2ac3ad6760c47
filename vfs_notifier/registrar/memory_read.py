"""Reading the memory of registered versions from the store: at start, after a reconnect
whose last write is uncertain, and after a takeover (the last holder's rows)."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from ..memory import VersionMemory, only_below
from ..store import Fence, Remembered, Store
from .disk import NO_VERSION, version_on_disk

log = logging.getLogger("vfs_notifier")


def read_memory(store: Store, roots: Iterable[str], prefixes: tuple[str, ...],
                adoptable: Callable[[str], bool], fence: Callable[[Iterable[str]], Fence]) -> VersionMemory:
    """Every companion entry below `prefixes` (other instances' rows share the table), and
    the rows an earlier version of the service wrote, which have none: each is adopted with
    the version on disk now, so that an upgrade neither doubles nor re-signals. Only where
    `adoptable(path)`: below the roots this instance holds (the others' holder adopts theirs)."""
    memory = VersionMemory(roots)
    memory.fill(only_below(store.remembered_columns(), prefixes))
    adopted = []
    for video_id, path in store.unremembered():
        if path.startswith(prefixes) and memory.get(path) is None and adoptable(path):
            version = version_on_disk(path) or NO_VERSION
            adopted.append(Remembered(video_id, path, version))
            memory.put(path, version, video_id)
    if adopted:
        store.remember(adopted, fence(a.path for a in adopted))
        log.info("adopted %d rows written before this version kept its memory", len(adopted))
    memory.merge()
    return memory
