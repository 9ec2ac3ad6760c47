"""One pass over the roots, without the service: `scan`, `pending` and `resync`.

Each is the service's own pipeline (walk, gate, judge, registrar) run once to the end,
so that what they say about a file is what the service would do with it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TextIO

from .budget import Budget
from .copier import Copier
from .copy_mode import CopyRegistration
from .gate import Gate
from .judge import Judge, Names
from .registrar import Registrar
from .rows import printable
from .settings import Settings
from .store import StoreUnavailable
from .store_factory import open_store

log = logging.getLogger("vfs_notifier")

SETTLE_WAIT_FACTOR = 3     # `scan` waits this many settle windows for files still settling


def _pipeline(settings: Settings, connect: bool) -> tuple[Registrar, Judge, Gate]:
    """The service's pipeline without the watcher; copy mode only when it may write."""
    registrar = Registrar(open_store(settings.database), settings.roots, settings.forget_removed,
                          copy_to=settings.copy_to, lease_seconds=settings.database.lease_seconds)
    registrar.dry_run = not connect
    registrar.connect()
    judge = Judge(Names(settings.extensions, settings.ignore), check_structure=settings.check_structure,
                  settle_seconds=settings.settle_seconds)
    if connect and not registrar.connected:
        raise StoreUnavailable(registrar.problem)
    copying = (CopyRegistration(Copier(clean_below=settings.copy_to), registrar, settings.copy_to)
               if settings.registration_mode == "copy" and connect else None)
    gate = Gate(settings.roots, settings.extensions, judge, registrar, copying=copying)
    for root in settings.roots:
        if not os.path.isdir(root.path):
            log.warning("watched directory %s does not exist", root.path)
        elif connect and not registrar.may_write(root.path):
            log.warning("%s is registered by %s: left to it", root.path, registrar.standby.get(root.path))
        else:
            gate.reconcile(root)
    return registrar, judge, gate


def _run(registrar: Registrar, judge: Judge, gate: Gate, wait_settling: bool) -> None:
    deadline = time.monotonic() + SETTLE_WAIT_FACTOR * judge.settle_seconds
    copying = gate.copying
    while True:
        if copying is not None:
            copying.turn()
        gate.step(Budget(0.5))
        registrar.flush(wait=True)
        if not registrar.dry_run and not registrar.connected:
            raise StoreUnavailable(registrar.problem)
        if gate.walking or gate.changes or (registrar.connected and registrar.pending):
            continue
        if copying is not None and copying.pending:
            time.sleep(0.05)   # copies run in their threads; rows follow as they finish
            continue
        if not wait_settling or not judge.settling or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def scan(settings: Settings, out: TextIO, resync: bool = False) -> int:
    """Reconcile every root once (waiting for files still settling), then report counts."""
    registrar, judge, gate = _pipeline(settings, connect=True)
    registrar.resync = resync
    _run(registrar, judge, gate, wait_settling=True)
    if gate.copying is not None:
        gate.copying.close()
    registrar.close()
    counts = gate.counts
    print(f"found {counts.found}, newly registered {registrar.registered}, already registered "
          f"{counts.already}, skipped {counts.skipped}, held as incomplete {len(judge.held)}, "
          f"signalled as changed {registrar.signalled}, withdrawn {registrar.withdrawn}", file=out)
    for path, why in sorted(judge.held.items()):
        print(f"held\t{printable(path)}\t{why}", file=out)
    return 0


def pending(settings: Settings, out: TextIO) -> int:
    """List the files held as unfinished, with the reason, registering nothing."""
    registrar, judge, gate = _pipeline(settings, connect=False)
    _run(registrar, judge, gate, wait_settling=True)
    registrar.close()
    for path, why in sorted(judge.held.items()):
        print(f"{printable(path)}\t{why}", file=out)
    return 0
