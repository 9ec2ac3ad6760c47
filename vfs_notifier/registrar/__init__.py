"""The registrar: the only caller of the store (registrar.py, its one entry point being
flush()), and its parts, one job each: what the gate tells it and asks (intake.py), what
waits for a write (queue.py), the link to the
store (link.py), "may this instance write this root" (lease.py), rows written (writes.py),
renames (moves.py), the one way a row goes (withdrawals.py), the memory read from the store
with older rows adopted (memory_read.py), and what the disk says now of a stored path (disk.py)."""

from .disk import version_of
from .lease import Leases
from .queue import Move, Offer
from .registrar import BATCH, Registrar

__all__ = ["BATCH", "Leases", "Move", "Offer", "Registrar", "version_of"]
