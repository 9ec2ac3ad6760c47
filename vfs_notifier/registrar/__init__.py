"""The registrar: the only part of the service that talks to the store (registrar.py), and
the one answer to "may this instance write this root" (lease.py)."""

from .lease import Leases
from .registrar import BATCH, Move, Offer, Registrar, version_of

__all__ = ["BATCH", "Leases", "Move", "Offer", "Registrar", "version_of"]
