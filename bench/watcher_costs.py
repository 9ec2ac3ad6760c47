"""What the kernel side costs: removing the watches of a deleted tree, and parsing events.

    /usr/bin/python3 bench/watcher_costs.py [--repo DIR] [--dirs 2000,8000,30000] [--files 20000]

--repo points at a checkout whose vfs_notifier is measured (default: this one), so a
commit can be compared with another in one run. Needs enough fs.inotify.max_user_watches.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

HEADER = struct.Struct("iIII")


def read_all(watcher):
    """Everything waiting, in one read() (a watcher that reads in shares is told a huge one)."""
    import inspect
    if "budget" in inspect.signature(watcher.read).parameters:
        return watcher.read(budget=1 << 40)
    return watcher.read()


def make_tree(top: Path, count: int) -> list[str]:
    """`count` directories, 50 to a parent, two levels deep (as uploads by date/show look)."""
    made = []
    per = 50
    for i in range((count + per) // (per + 1) + 1):
        parent = top / f"p{i:05d}"
        parent.mkdir()
        made.append(str(parent))
        for j in range(per):
            if len(made) >= count:
                return made
            child = parent / f"c{j:03d}"
            child.mkdir()
            made.append(str(child))
        if len(made) >= count:
            return made
    return made


def drain(watcher, until, timeout: float = 120.0) -> tuple[float, int, int]:
    """Read until `until()` holds: seconds spent inside read(), longest read(), changes."""
    import select
    poller = select.poll()
    poller.register(watcher.fileno(), select.POLLIN)
    spent, longest, changes = 0.0, 0.0, 0
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        poller.poll(100)
        started = time.perf_counter()
        changes += len(watcher.read())
        took = time.perf_counter() - started
        spent += took
        longest = max(longest, took)
    return spent, longest, changes


def removal(Watcher, scratch: Path, count: int) -> dict:
    top = scratch / f"tree-{count}"
    top.mkdir()
    watcher = Watcher()
    try:
        watcher.watch(str(scratch), is_root=True)
        dirs = make_tree(top, count)
        watcher.watch(str(top))
        for directory in dirs:
            assert watcher.watch(directory) is None, directory
        watcher.read()
        before = watcher.watch_count()
        started = time.perf_counter()
        shutil.rmtree(top)
        rm_took = time.perf_counter() - started
        spent, longest, changes = drain(watcher, lambda: watcher.watch_count() <= before - count - 1)
        return {"dirs": count, "rm": rm_took, "read_total": spent, "read_longest": longest,
                "watches_left": watcher.watch_count()}
    finally:
        watcher.close()


def unwatch_direct(Watcher, scratch: Path, count: int) -> float:
    """unwatch_tree() alone on a tree that is still there (no events involved)."""
    top = scratch / f"direct-{count}"
    top.mkdir()
    watcher = Watcher()
    try:
        dirs = make_tree(top, count)
        watcher.watch(str(top))
        for directory in dirs:
            watcher.watch(directory)
        started = time.perf_counter()
        watcher.unwatch_tree(str(top))
        took = time.perf_counter() - started
        assert watcher.watch_count() == 0
        return took
    finally:
        watcher.close()
        shutil.rmtree(top)


def raw_events(chunks) -> int:
    count = 0
    for data in chunks:
        if not isinstance(data, bytes):
            continue
        offset = 0
        while offset < len(data):
            _wd, _mask, _cookie, length = HEADER.unpack_from(data, offset)
            offset += HEADER.size + length
            count += 1
    return count


def parse(Watcher, scratch: Path, files: int, attrib: bool) -> dict:
    top = scratch / f"burst-{files}-{int(attrib)}"
    top.mkdir()
    watcher = Watcher()
    try:
        watcher.watch(str(top), is_root=True)
        old = time.time() - 3600
        for i in range(files):
            path = top / f"f{i:06d}.mp4"
            with open(path, "wb") as handle:
                handle.write(b"x")
            if attrib:
                os.utime(path, (old, old))
        time.sleep(1.0)            # the reader thread has moved everything into its deque
        saved = list(watcher._chunks)
        events = raw_events(saved)
        best = float("inf")
        for _ in range(10):            # the same events again: the parse alone, best of ten
            watcher._chunks.extend(saved)
            started = time.perf_counter()
            changes = read_all(watcher)
            best = min(best, time.perf_counter() - started)
        return {"files": files, "attrib": attrib, "events": events, "changes": len(changes),
                "read": best, "per_event_us": best / max(events, 1) * 1e6,
                "per_file_us": best / files * 1e6}
    finally:
        watcher.close()
        shutil.rmtree(top)


def compare_parse(watchers: dict, scratch: Path, files: int, attrib: bool, rounds: int) -> dict:
    """The same burst seen by each Watcher (one inotify instance each), parsed alternately:
    CPU time of the reading thread, so other load on the machine counts less."""
    top = scratch / f"compare-{files}-{int(attrib)}"
    top.mkdir()
    instances = {name: cls() for name, cls in watchers.items()}
    try:
        for watcher in instances.values():
            watcher.watch(str(top), is_root=True)
        old = time.time() - 3600
        for i in range(files):
            path = top / f"f{i:06d}.mp4"
            with open(path, "wb") as handle:
                handle.write(b"x")
            if attrib:
                os.utime(path, (old, old))
        time.sleep(1.0)
        saved = {name: list(w._chunks) for name, w in instances.items()}
        best = {name: float("inf") for name in instances}
        counts = {}
        for _ in range(rounds):
            for name, watcher in instances.items():
                watcher._chunks.clear()
                watcher._chunks.extend(saved[name])
                started = time.thread_time()
                changes = read_all(watcher)
                best[name] = min(best[name], time.thread_time() - started)
                counts[name] = (raw_events(saved[name]), len(changes))
        return {name: (best[name], *counts[name]) for name in instances}
    finally:
        for watcher in instances.values():
            watcher.close()
        shutil.rmtree(top)


def load_old_watcher(checkout: str):
    """The watcher module of another checkout, beside this one's: its vfs_notifier loaded as
    a package of another name, so that its relative imports (watch_index, ...) resolve."""
    import importlib
    import importlib.util
    package = f"{checkout}/vfs_notifier"
    spec = importlib.util.spec_from_file_location("old_vfs_notifier", f"{package}/__init__.py",
                                                  submodule_search_locations=[package])
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_vfs_notifier"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("old_vfs_notifier.watcher")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--dirs", default="2000,8000,30000")
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old", help="a checkout whose watcher.py is compared with this one's, parse cost only")
    args = parser.parse_args()
    sys.path.insert(0, args.repo)
    from vfs_notifier.watcher import Watcher
    if args.old:
        old_module = load_old_watcher(args.old)
        with tempfile.TemporaryDirectory(prefix="watcher-costs-") as scratch_name:
            for attrib in (False, True):
                result = compare_parse({args.old: old_module.Watcher, args.repo: Watcher}, Path(scratch_name),
                                       args.files, attrib, rounds=20)
                for name, (cpu, events, changes) in result.items():
                    print(f"parse {args.files} files{' + utime' if attrib else ''} by {name}: {events} events -> "
                          f"{changes} changes, {cpu * 1000:.1f} ms CPU ({cpu / events * 1e6:.2f} us/event, "
                          f"{cpu / args.files * 1e6:.2f} us/file; best of 20)")
        return
    print(f"vfs_notifier from {args.repo}")
    with tempfile.TemporaryDirectory(prefix="watcher-costs-") as scratch_name:
        scratch = Path(scratch_name)
        for count in (int(c) for c in args.dirs.split(",") if c.isdigit()):
            direct = unwatch_direct(Watcher, scratch, count)
            print(f"unwatch_tree of {count} dirs (tree still there): {direct:.3f} s")
            r = removal(Watcher, scratch, count)
            print(f"rm -rf of {count} dirs: rm {r['rm']:.2f} s; read() total {r['read_total']:.3f} s, "
                  f"longest read() {r['read_longest']:.3f} s; watches left {r['watches_left']}")
        for attrib in (False, True):
            runs = [parse(Watcher, scratch, args.files, attrib) for _ in range(args.rounds)]
            best = min(runs, key=lambda r: r["read"])
            print(f"parse {best['files']} files{' + utime' if attrib else ''}: {best['events']} events -> "
                  f"{best['changes']} changes in {best['read'] * 1000:.1f} ms "
                  f"({best['per_event_us']:.2f} us/event, {best['per_file_us']:.2f} us/file; best of {args.rounds} x 10)")


if __name__ == "__main__":
    main()
