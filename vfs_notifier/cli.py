"""The command line: run, scan, list, check-config, init-db; and the exit codes they promise.

0 after a clean stop, 78 (EX_CONFIG) for any configuration error, with one line naming
the setting and where it came from, and 1 for anything else.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Iterable, Optional, Sequence

from . import __version__, listing
from . import settings as settings_module
from .logs import Logs
from .reconciler import SETTLE_SECONDS, Reconciler
from .registrar import Registrar
from .settings import EX_CONFIG, ConfigError, Settings
from .store import StoreUnavailable, VideoRow, open_store

log = logging.getLogger("vfs_notifier")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vfs-notifier",
        description="Register finished video files under watched directories as rows of a videos table.")
    parser.add_argument("--version", action="version", version=f"vfs-notifier {__version__}")
    parser.add_argument("command", nargs="?", default="run",
                        choices=("run", "scan", "list", "check-config", "init-db"),
                        help="run: the service (default); scan: reconcile once and exit; "
                             "list: print the registered rows; "
                             "check-config: show the effective settings; init-db: create the table")
    parser.add_argument("--json", action="store_true", help="list: one JSON array of objects")
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
        if args.command == "list":
            for warning in settings.warnings:   # read-only: no log files are written
                print(f"vfs-notifier: warning: {warning}", file=sys.stderr)
            return list_rows(settings, as_json=args.json)
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
        example = RowMaker(root).row(root.watch_path, "example.mp4")
        print(f"{root.path}/example.mp4 -> {example.url}")
    for warning in settings.warnings:
        print(f"warning: {warning}")
    return 0


def list_rows(settings: Settings, as_json: bool) -> int:
    """Print every row of the table, by id; 1 if the database is unavailable."""
    database = settings.database
    if not database.uses_mysql and not os.path.exists(database.sqlite_path):
        # Nothing registered yet: say so without creating the file (list only reads).
        print(f"vfs-notifier: no rows: {database.sqlite_path} does not exist yet", file=sys.stderr)
        rows: Iterable[VideoRow] = ()
    else:
        store = open_store(database)
        store.open()
        rows = store.videos()
    out = sys.stdout
    if as_json:
        for chunk in listing.json_chunks(rows):
            out.write(chunk)
    else:
        for line in listing.table_lines(rows):
            out.write(line + "\n")
    out.flush()
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
    reconciler = Reconciler(settings.roots, settings.extensions, registrar)
    for root in settings.roots:
        if os.path.isdir(root.watch_path):
            reconciler.reconcile(root)
        else:
            log.warning("watched directory %s does not exist", root.watch_path)
    deadline = time.monotonic() + 10 * SETTLE_SECONDS
    while reconciler.walking or registrar.pending or reconciler.settling:
        reconciler.step()
        registrar.flush()
        if not registrar.connected:
            raise StoreUnavailable(registrar.problem)
        if not reconciler.walking and not registrar.pending and reconciler.settling:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
            reconciler.settle()
    registrar.close()
    counts = reconciler.counts
    print(f"found {counts.found}, newly registered {counts.new}, already registered {counts.already}, "
          f"skipped {counts.skipped}, still being written {len(reconciler.settling)}, "
          f"forgotten {registrar.forgotten}")
    return 0
