"""Copy mode between the gate and the registrar: copy first, then offer the copy's row.

In copy mode (`[registration] mode = "copy"`) the row of a finished file names its copy
below `copy_to` (RowMaker(root, copy_to) makes it). Instead of offering that row to the
registrar, the gate hands it here with the file's own path: the copier copies it beside
the loop, and each loop turn offers the rows of the copies now in place. A full copy
queue holds rows here until it has room, so nothing is dropped.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Protocol

from .copier import Copier
from .rows import Row, printable
from .store import Version

log = logging.getLogger("vfs_notifier")


class Offers(Protocol):
    def offer(self, row: Row, version: Version, announce: bool = True) -> bool: ...


class CopyRegistration:
    def __init__(self, copier: Copier, registrar: Offers, copy_to: str) -> None:
        self.copier = copier
        self.registrar = registrar
        self.copy_to = copy_to
        self.held: deque[tuple[Row, Version, str, bool]] = deque()   # waiting for room in the copier

    def offer(self, row: Row, version: Version, source: str, announce: bool) -> None:
        """The file at `source` (this version of it) is finished: copy it to `row.path`,
        then register `row`."""
        if self.held or not self.copier.submit(source, row.path, (row, version, announce)):
            self.held.append((row, version, source, announce))

    def turn(self) -> None:
        """Offer the rows of the copies now in place; queue what was held."""
        while self.held:
            row, version, source, announce = self.held[0]
            if not self.copier.submit(source, row.path, (row, version, announce)):
                break
            self.held.popleft()
        for (row, version, announce), _ in self.copier.completed():
            self.registrar.offer(row, version, announce)
        for (row, _, _), reason in self.copier.failed():
            log.warning("not copied, not registered: %s: %s", printable(row.path), reason)

    @property
    def busy(self) -> bool:
        """True while the copier cannot take more: walks wait instead of piling rows up here."""
        return bool(self.held) or self.copier.full

    @property
    def pending(self) -> int:
        return self.copier.pending + len(self.held)

    def fileno(self) -> int:
        return self.copier.fileno()

    def close(self) -> None:
        self.copier.close()
