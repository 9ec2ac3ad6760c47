"""The gate between what is seen on disk and the registrar (gate.py), in parts by job."""

from ..budget import Budget
from .gate import Gate
from .routing import Counts

__all__ = ["Budget", "Counts", "Gate"]
