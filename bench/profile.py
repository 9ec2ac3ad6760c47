"""Where the daemon spends its time: py-spy profiles of a cold start and of a live burst.

    python3 -m bench.profile --py-spy /path/to/py-spy [--files 100000] [--burst 20000]

py-spy is a tool, not a dependency: install it anywhere (`pip install py-spy` in a venv).
Prints, for each phase, the share of samples per module and the functions with the most
own (self) and inclusive time, and keeps the raw profiles and flame graphs in the scratch dir.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from . import media, tree
from .contenders import Setup, export_daemon, start_daemon
from .db import RowWatcher
from .mariadb import MariaDB
from .notify import NotifyListener
from .procs import PYTHON

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")


def parse_raw(path: str) -> tuple[collections.Counter, int]:
    """py-spy's raw (collapsed) format: 'frame;frame;... count' per line, root first."""
    stacks: collections.Counter = collections.Counter()
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks, sum(stacks.values())


def _name(frame: str) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    file = m["file"]
    for marker in ("/vfs_notifier/", "/python3.11/", "/dist-packages/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{m['func']} ({file})"


def _module(frame: str) -> str:
    m = FRAME.match(frame)
    file = m["file"] if m else frame
    if "/vfs_notifier/" in file:
        return "vfs_notifier/" + file.split("/vfs_notifier/", 1)[1]
    if "pymysql" in file:
        return "pymysql"
    if "/logging/" in file:
        return "logging (stdlib)"
    if "systemd" in file:
        return "systemd"
    if "pyinotify" in file:
        return "pyinotify"
    return "stdlib: " + os.path.basename(file)


def summary(path: str, title: str, seconds: float, top: int = 15) -> str:
    stacks, total = parse_raw(path)
    if not total:
        return f"## {title}\n\nno samples\n"
    self_t: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    mods: collections.Counter = collections.Counter()
    for stack, n in stacks.items():
        self_t[_name(stack[-1])] += n
        mods[_module(stack[-1])] += n
        for name in {_name(f) for f in stack}:
            incl[name] += n
    pct = lambda n: f"{100 * n / total:5.1f}%"  # noqa: E731
    out = [f"## {title}", "", f"{total} samples over {seconds:.2f} s wall clock "
           "(py-spy, 250 Hz, idle excluded: a sample is the main thread running Python).", "",
           "Own time by module:", ""]
    out += [f"    {pct(n)}  {m}" for m, n in mods.most_common(top)]
    out += ["", "Own (self) time by function:", ""]
    out += [f"    {pct(n)}  {f}" for f, n in self_t.most_common(top)]
    out += ["", "Inclusive time by function:", ""]
    out += [f"    {pct(n)}  {f}" for f, n in incl.most_common(top + 10)]
    return "\n".join(out) + "\n"


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench.profile", description=__doc__)
    ap.add_argument("--py-spy", required=True)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--burst", type=int, default=20_000)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--daemon-rev", default=None, help="profile vfs_notifier/ as committed at this revision")
    args = ap.parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="vfs-profile-")
    os.makedirs(work, exist_ok=True)
    server = MariaDB(work)
    notify = NotifyListener(os.path.join(work, "notify.sock"))
    reports = []
    try:
        server.start()
        base = os.path.join(work, "trees")
        root = os.path.join(base, "t")
        media.use(os.path.join(work, "media"))   # real clips: the structure check holds anything else
        tree.generate(root, args.files, max(1, args.files // 100))
        live = [os.path.join(root, "live", f"d{d:02d}") for d in range(20)]
        for d in live:
            os.makedirs(d)
        time.sleep(3)
        daemon_path = ""
        if args.daemon_rev:
            daemon_path = os.path.join(work, "daemon-src")
            print(f"profiling commit {export_daemon(REPO, args.daemon_rev, daemon_path)}", file=sys.stderr)
        setup = Setup(REPO, work, base, "http://bench.example/videos", notify, daemon_path)
        params = server.fresh_database("profile")
        watcher = RowWatcher(params)
        cold_raw = os.path.join(work, "cold.txt")
        spy = [args.py_spy, "record", "--rate", "250", "--format", "raw", "-o", cold_raw, "--"]
        proc = start_daemon(setup, params, root, "profile-cold", wrapper=spy)
        t = watcher.wait_for(args.files, 300, alive=proc.alive)
        cold_s = (t or time.time()) - proc.t_start
        print(f"cold start under py-spy: {cold_s:.2f} s for {args.files} files", file=sys.stderr)
        daemons = [p for p in children(proc.pid)]
        for p in daemons:
            os.kill(p, signal.SIGTERM)
        proc.wait(60)
        proc.stop()
        reports.append(summary(cold_raw, f"Cold start, {args.files:,} files (empty table)", cold_s))

        # The warm restart: the same table, every file registered; until READY (walk over).
        warm_raw = os.path.join(work, "warm.txt")
        spy[spy.index(cold_raw)] = warm_raw
        mark = notify.mark()
        proc = start_daemon(setup, params, root, "profile-warm", wrapper=spy)
        ready = notify.wait_for(r"^READY=1", mark, 120)
        warm_s = (ready[0] if ready else time.time()) - proc.t_start
        print(f"warm restart under py-spy: {warm_s:.2f} s", file=sys.stderr)
        for p in children(proc.pid):
            os.kill(p, signal.SIGTERM)
        proc.wait(60)
        proc.stop()
        reports.append(summary(warm_raw, f"Warm restart, {args.files:,} files all registered "
                               "(until READY=1; includes stopping)", warm_s))

        # The burst: a daemon started normally, py-spy attached once it is idle.
        mark = notify.mark()
        proc = start_daemon(setup, params, root, "profile-burst")
        notify.wait_for(r"^READY=1", mark, 120)
        time.sleep(1)
        burst_raw = os.path.join(work, "burst.txt")
        rec = subprocess.Popen([args.py_spy, "record", "--rate", "250", "--format", "raw",
                                "-o", burst_raw, "--pid", str(proc.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        base_rows = watcher.resync()
        t0 = time.time()
        subprocess.run([PYTHON, "-m", "bench.writer", str(args.burst), "p", *live], cwd=REPO,
                       env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.DEVNULL, check=True)
        t = watcher.wait_for(base_rows + args.burst, 120)
        burst_s = (t or time.time()) - t0
        time.sleep(0.2)
        rec.send_signal(signal.SIGINT)
        rec.wait(60)
        print(f"burst under py-spy: {burst_s:.2f} s for {args.burst} files", file=sys.stderr)
        proc.stop()
        reports.append(summary(burst_raw, f"Live burst, {args.burst:,} files", burst_s))
        watcher.close()
    finally:
        notify.close()
        server.stop()
    text = "\n".join(reports)
    with open(os.path.join(work, "profile.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"raw profiles in {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
