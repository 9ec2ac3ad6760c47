"""The warm restart against its floor (issue 24), at several tree sizes, before and after.

    python3 -m bench.warm [--files 100000,1000000] [--before-rev REV] [--repeat 3] [--workdir DIR]

For each size: a tree of empty video files (a warm restart reads no file, so their content does
not matter as long as the registered version is theirs), registered by writing both tables as the
service writes them (bench.limit cold-kept), then, taking turns `repeat` times: the floor (a walk
that lstats every file plus one SELECT of the companion table, bench.limit warm-kept), the daemon
at --before-rev and the daemon of the working tree (or --daemon-rev), each restarted on the
registered tree and timed from its process start to its STATUS saying the walk is over and
nothing waits. The daemon's resident memory is read at that moment. Prints one table: the medians.
Big trees go under --workdir (default /var/tmp): /tmp may be a small tmpfs.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

from . import tree
from .contenders import Setup, export_daemon, start_daemon, start_limit
from .db import RowWatcher
from .mariadb import MariaDB
from .notify import NotifyListener
from .procs import children, memory_kb
from .profile import summary

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECONCILED = r"^STATUS=Watching (?!.*waiting)"


def empty_tree(root: str, files: int, dirs: int) -> None:
    """The bench's tree shape and names (bench/tree.py), every file empty: cheap at a million."""
    made = 0
    for d in range(dirs):
        directory = os.path.join(root, f"group {d // 100:03d}", tree.dir_name(d))
        os.makedirs(directory, exist_ok=True)
        for _ in range(files // dirs + (1 if d < files % dirs else 0)):
            os.close(os.open(os.path.join(directory, tree.file_name(made)), os.O_WRONLY | os.O_CREAT, 0o644))
            made += 1


def count_rows(params) -> int:
    watcher = RowWatcher(params)
    try:
        return watcher.totals()[0]
    finally:
        watcher.close()


def floor_once(setup: Setup, params, root: str) -> float:
    proc = start_limit(setup, params, root, "warm-kept", "floor")
    proc.wait(600)
    seconds = time.time() - proc.t_start
    proc.stop()
    return seconds


def daemon_once(setup: Setup, params, root: str, path: str, label: str,
                timeout: float, wrapper: list[str] | None = None) -> tuple[float | None, float]:
    """(seconds to the reconciled STATUS, VmRSS MB then); the daemon is stopped after."""
    mark = setup.notify.mark()
    proc = start_daemon(setup, params, root, label, daemon_path=path, wrapper=wrapper)
    done = setup.notify.wait_for(RECONCILED, mark, timeout)
    rss = 0.0
    if done is not None and proc.alive():
        pid = (children(proc.pid) or [proc.pid])[0] if wrapper else proc.pid
        rss = memory_kb(pid).get("VmRSS", 0) / 1024
    if wrapper:     # the profiler writes its profile once the daemon it runs has ended
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGTERM)
        proc.wait(60)
    proc.stop(60)
    return (done[0] - proc.t_start if done else None), rss


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench.warm", description=__doc__)
    ap.add_argument("--files", default="100000,1000000")
    ap.add_argument("--files-per-dir", type=int, default=100)
    ap.add_argument("--before-rev", default="HEAD")
    ap.add_argument("--daemon-rev", default=None, help="the \"after\" column at this revision "
                                                       "(default: the working tree)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep-profiles", default=None, help="a directory to keep the raw py-spy "
                                                          "profiles in (line by line, for a closer look)")
    ap.add_argument("--py-spy", default=None, help="also profile one more warm restart of the "
                                                   "\"after\" daemon with this py-spy; printed last")
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="vfs-warm-", dir=args.workdir or "/var/tmp")

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    variants = [("before", export_daemon(REPO, args.before_rev, os.path.join(work, "before")),
                 os.path.join(work, "before"))]
    if args.daemon_rev:
        variants.append(("after", export_daemon(REPO, args.daemon_rev, os.path.join(work, "after")),
                         os.path.join(work, "after")))
    else:
        variants.append(("after", "working tree", REPO))
    server = MariaDB(work)
    notify = NotifyListener(os.path.join(work, "notify.sock"))
    base = os.path.join(work, "trees")
    rows, profiles = [], []
    try:
        server.start()
        setup = Setup(REPO, work, base, "http://bench.example/videos", notify)
        for size in (int(s) for s in args.files.split(",")):
            root = os.path.join(base, f"t{size}")
            t0 = time.perf_counter()
            empty_tree(root, size, max(1, size // args.files_per_dir))
            say(f"tree of {size:,} empty files written in {time.perf_counter() - t0:.1f} s")
            params = server.fresh_database(f"warm{size}")
            proc = start_limit(setup, params, root, "cold-kept", f"register-{size}")
            proc.wait(3600)
            proc.stop()
            registered = count_rows(params)
            say(f"registered {registered:,} rows (both tables)")
            timeout = 60 + size / 5000
            # Not counted: the first start creates the leases table and takes the lease.
            daemon_once(setup, params, root, variants[-1][2], "first", timeout)
            runs: dict[str, list] = {"floor": []}
            for name, _, _ in variants:
                runs[name] = []
            for i in range(args.repeat):
                order = variants if i % 2 == 0 else variants[::-1]
                runs["floor"].append(floor_once(setup, params, root))
                say(f"{size:,} floor: {runs['floor'][-1]:.2f} s")
                for name, _, path in order:
                    runs[name].append(daemon_once(setup, params, root, path, f"{name}-{size}-{i}", timeout))
                    say(f"{size:,} {name}: {runs[name][-1][0]} s, VmRSS {runs[name][-1][1]:.1f} MB")
            if args.py_spy:
                raw = os.path.join(work, f"warm-{size}.txt")
                spy = [args.py_spy, "record", "--rate", "250", "--format", "raw", "-o", raw, "--"]
                secs, _ = daemon_once(setup, params, root, variants[-1][2], "profiled", timeout, spy)
                time.sleep(1)
                if args.keep_profiles:
                    shutil.copy(raw, args.keep_profiles)
                profiles.append(summary(raw, f"Warm restart, {size:,} files, {variants[-1][1]}",
                                        secs or 0.0, top=25))
            inserted = count_rows(params) - registered
            floor = statistics.median(runs["floor"])
            for name, source, _ in variants:
                times = [t for t, _ in runs[name]]
                secs = statistics.median(times) if None not in times else None
                rss = statistics.median(r for _, r in runs[name])
                rows.append((size, name, source, floor, secs, rss, inserted))
            server.drop(params)
            shutil.rmtree(root, ignore_errors=True)
    finally:
        notify.close()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"warm restart vs its floor (stat walk + one SELECT of the companion table), "
          f"median of {args.repeat}, taking turns\n")
    print("| files | daemon | floor | warm restart | ratio | VmRSS | rows inserted |")
    print("|---|---|---|---|---|---|---|")
    for size, name, source, floor, secs, rss, inserted in rows:
        ratio = f"{secs / floor:.2f} ×" if secs else "—"
        print(f"| {size:,} | {name} ({source}) | {floor:.2f} s | "
              f"{'—' if secs is None else f'{secs:.2f} s'} | {ratio} | {rss:.1f} MB | {inserted} |")
    for text in profiles:
        print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
