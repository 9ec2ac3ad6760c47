"""May this instance write this root? The one answer, held per watched root.

A root is written by one instance at a time: the one holding its lease in the database
(store.lease). The lease is a row, not a connection's named lock: GET_LOCK is granted on
each Galera node separately, so two hosts writing through two nodes both got it. A lease is
taken when free or lapsed (with a token one greater than the last holder's), renewed every
poll, lasts `seconds` by the database's clock, and is released at a clean stop.

Holding a lease here is a belief, refreshed every poll; what makes it true at the moment
of a write is the fence: every write carries the tokens of the roots it touches and the
store commits it only if each is still this instance's (store.Fence). A holder stopped
past its lease, partitioned away or behind a node that left the cluster commits nothing,
says so once (LeaseLost) and stands by.
"""

from __future__ import annotations

import logging
from typing import Iterable, Sequence

from ..store import Fence, Store

log = logging.getLogger("vfs_notifier")


class Leases:
    def __init__(self, roots: Sequence[str], seconds: float) -> None:
        self.roots = tuple(roots)
        self.seconds = seconds
        self.tokens: dict[str, int] = {}     # root -> our token: the roots this instance may write
        self.standby: dict[str, str] = {}    # root -> who holds it instead

    def holds(self, root: str) -> bool:
        return root in self.tokens

    def fence(self, roots: Iterable[str]) -> Fence:
        """The fence of a write touching `roots`. A root not held gets token 0, which no
        lease has: the store refuses the write (LeaseLost) rather than write unfenced."""
        return {root: self.tokens.get(root, 0) for root in roots}

    def renew(self, store: Store) -> tuple[list[str], list[str]]:
        """Take or renew every root's lease. (roots gained, roots lost) since the last call;
        StoreUnavailable if the database cannot answer (never a silent standby)."""
        gained, lost = [], []
        for root in self.roots:
            had = self.tokens.get(root, 0)
            lease = store.lease(root, had, self.seconds)
            if lease.token:
                self.tokens[root] = lease.token
                if not had:
                    gained.append(root)
                    if self.standby.pop(root, None) is not None:
                        log.info("took over %s: its holder's lease lapsed or was released "
                                 "(lease token %d)", root, lease.token)
                continue
            if had:
                del self.tokens[root]
                lost.append(root)
                log.warning("lost the lease on %s to %s: standing by, writing nothing", root, lease.holder)
            elif self.standby.get(root) != lease.holder:
                log.warning("%s is registered by %s into the same table: standing by, taking over "
                            "when its lease lapses (%g s after it stops)", root, lease.holder, self.seconds)
            self.standby[root] = lease.holder
        return gained, lost

    def lost(self, roots: Iterable[str]) -> list[str]:
        """A write's fence failed for these roots: stand by for them (said once each)."""
        newly = [root for root in roots if self.tokens.pop(root, None) is not None]
        for root in newly:
            self.standby[root] = "another instance"
            log.warning("lost the lease on %s (a write's fence found it taken over or lapsed): "
                        "the write committed nothing; standing by", root)
        return newly

    def release(self, store: Store) -> None:
        """A clean stop: the next instance takes over at its next poll, not after the lease."""
        for root, token in list(self.tokens.items()):
            store.release(root, token)
        self.tokens.clear()
