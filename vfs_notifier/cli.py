"""The command line: run, scan, list, pending, resync, release, check-config, init-db; and the
exit codes they promise.

0 after a clean stop, 78 (EX_CONFIG) for any configuration error, with one line naming
the setting and where it came from, and 1 for anything else.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Iterable, Optional, Sequence

from . import __version__, listing
from . import settings as settings_module
from .logs import Logs
from .settings import EX_CONFIG, ConfigError, Settings
from .store import StoreUnavailable, VideoRow
from .store_factory import open_store

log = logging.getLogger("vfs_notifier")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vfs-notifier",
        description="Register finished video files under watched directories as rows of a videos table.")
    parser.add_argument("--version", action="version", version=f"vfs-notifier {__version__}")
    parser.add_argument("command", nargs="?", default="run",
                        choices=("run", "scan", "list", "pending", "resync", "release", "check-config",
                                 "init-db"),
                        help="run: the service (default); scan: reconcile once and exit; "
                             "list: print the registered rows; "
                             "pending: list the files held as unfinished, with the reason; "
                             "resync: like scan, and give a row again to every finished file whose "
                             "row a consumer deleted; release FILE...: register these held files as "
                             "they are (they play, whatever their framing says); "
                             "check-config: show the effective settings; init-db: create the table")
    parser.add_argument("files", nargs="*", metavar="FILE", help="release: the files")
    parser.add_argument("--json", action="store_true", help="list: one JSON array of objects")
    parser.add_argument("--config", metavar="PATH",
                        help="settings file (default: $VFS_NOTIFIER_CONFIG, else /etc/vfs-notifier.toml)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.files and args.command != "release":
        parser.error(f"{args.command} takes no files (only release does)")
    logs = Logs()
    if args.command == "release":
        return release(args.files)
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
        from . import oneshot
        if args.command == "pending":
            return oneshot.pending(settings, sys.stdout)
        return oneshot.scan(settings, sys.stdout, resync=args.command == "resync")
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


def release(files: Sequence[str]) -> int:
    """Mark each file finished as it is (judge.release); the running service is told by the
    attribute change and registers it. 1 if any could not be marked."""
    from .judge import release as mark
    if not files:
        print("vfs-notifier: release: name the held files to register as they are", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        try:
            size = mark(path)
        except OSError as err:
            print(f"vfs-notifier: release: {path}: {err.strerror}", file=sys.stderr)
            failed = 1
            continue
        print(f"{path}: released at {size:,} bytes (registered as it is while it keeps that size)")
    return failed


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


def list_rows(settings: Settings, as_json: bool) -> int:
    """Print every row of the table, by id; 1 if the database is unavailable."""
    database = settings.database
    if not database.uses_mysql and not os.path.exists(database.sqlite_path):
        # Nothing registered yet: say so without creating the file (list only reads).
        print(f"vfs-notifier: no rows: {database.sqlite_path} does not exist yet", file=sys.stderr)
        rows: Iterable[VideoRow] = ()
        store = None
    else:
        store = open_store(database)
        store.open()
        rows = store.videos()
    try:
        out = sys.stdout
        if as_json:
            for chunk in listing.json_chunks(rows):
                out.write(chunk)
        else:
            for line in listing.table_lines(rows):
                out.write(line + "\n")
        out.flush()
    finally:
        if store is not None:
            store.close()
    return 0


def init_db(settings: Settings) -> int:
    store = open_store(settings.database)
    store.open()
    store.close()
    print(f"table videos is ready in {store.description}")
    return 0
