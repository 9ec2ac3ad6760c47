"""The command line: run, scan, check-config, init-db; and the exit codes they promise.

0 after a clean stop, 78 (EX_CONFIG) for any configuration error, with one line naming
the setting and where it came from, and 1 for anything else.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Optional, Sequence

from . import __version__
from . import settings as settings_module
from .copier import Copier
from .copy_mode import CopyRegistration
from .logs import Logs
from .reconciler import SETTLE_SECONDS, Reconciler
from .registrar import Registrar
from .settings import EX_CONFIG, ConfigError, Settings
from .store import StoreUnavailable, open_store

log = logging.getLogger("vfs_notifier")
COPY_PROBLEM_SECONDS = 30.0   # scan: how long copies may stay held up by a disk problem


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vfs-notifier",
        description="Register finished video files under watched directories as rows of a videos table.")
    parser.add_argument("--version", action="version", version=f"vfs-notifier {__version__}")
    parser.add_argument("command", nargs="?", default="run",
                        choices=("run", "scan", "check-config", "init-db"),
                        help="run: the service (default); scan: reconcile once and exit; "
                             "check-config: show the effective settings; init-db: create the table")
    parser.add_argument("--config", metavar="PATH",
                        help="settings file (default: $VFS_NOTIFIER_CONFIG, else /etc/vfs-notifier.toml)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logs = Logs()
    try:
        if args.command == "run":
            from .daemon import run
            return run(args.config, logs)
        settings = settings_module.load(args.config, os.environ)
        if args.command == "check-config":
            return check_config(settings)
        logs.configure(settings.log_directory, settings.log_level)
        for warning in settings.warnings:
            log.warning("%s", warning)
        if args.command == "init-db":
            return init_db(settings)
        return scan(settings)
    except ConfigError as err:
        print(f"vfs-notifier: {err}", file=sys.stderr)
        return EX_CONFIG
    except StoreUnavailable as err:
        print(f"vfs-notifier: database unavailable: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        logs.close()


def check_config(settings: Settings) -> int:
    """Print each setting with its source; password masked. 78 if a root has no URL."""
    width = max(len(key) for key in settings.provenance)
    for key in sorted(settings.provenance):
        value, source = settings.provenance[key]
        print(f"{key:<{width}} = {value}    ({source})")
    print(f"store: {open_store(settings.database).description}")
    for root in settings.roots:
        from .rows import RowMaker
        example = RowMaker(root, settings.copy_to).row(root.path, "example.mp4")
        if settings.copy_to:
            print(f"{root.path}/example.mp4 -> copied to {example.path} -> {example.url}")
        else:
            print(f"{root.path}/example.mp4 -> {example.url}")
    for warning in settings.warnings:
        print(f"warning: {warning}")
    return 0


def init_db(settings: Settings) -> int:
    store = open_store(settings.database)
    store.open()
    store.close()
    print(f"table videos is ready in {store.description}")
    return 0


def scan(settings: Settings) -> int:
    """Reconcile every root once, waiting for files still being written, then report."""
    registrar = Registrar(open_store(settings.database), settings.forget_removed,
                          roots=[root.path for root in settings.roots])
    if not registrar.connect():
        raise StoreUnavailable(registrar.problem)
    copying = (CopyRegistration(Copier(clean_below=settings.copy_to), registrar, settings.copy_to)
               if settings.registration_mode == "copy" else None)
    reconciler = Reconciler(settings.roots, settings.extensions, registrar, copying=copying)
    for root in settings.roots:
        if os.path.isdir(root.watch_path):
            reconciler.reconcile(root)
        else:
            log.warning("watched directory %s does not exist", root.watch_path)
    deadline = time.monotonic() + 10 * SETTLE_SECONDS
    copy_deadline = time.monotonic() + COPY_PROBLEM_SECONDS
    while reconciler.walking or registrar.pending or reconciler.settling or (copying and copying.pending):
        if copying is not None:
            copying.turn()
            if not copying.copier.problems:
                copy_deadline = time.monotonic() + COPY_PROBLEM_SECONDS
            elif time.monotonic() > copy_deadline and not reconciler.walking and not registrar.pending:
                break   # a full disk will not clear itself during a scan: the service retries
            if copying.busy or (copying.pending and not reconciler.walking):
                time.sleep(0.05)   # copies run in their threads; rows follow as they finish
        if copying is None or not copying.busy:
            reconciler.step()
        registrar.flush()
        if not registrar.connected:
            raise StoreUnavailable(registrar.problem)
        if not reconciler.walking and not registrar.pending and reconciler.settling:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
            reconciler.settle()
    not_copied = copying.pending if copying is not None else 0
    if copying is not None:
        copying.close()
    registrar.close()
    counts = reconciler.counts
    print(f"found {counts.found}, newly registered {counts.new}, already registered {counts.already}, "
          f"skipped {counts.skipped}, still being written {len(reconciler.settling)}, "
          f"forgotten {registrar.forgotten}" + (f", not copied {not_copied}" if not_copied else ""))
    return 0
