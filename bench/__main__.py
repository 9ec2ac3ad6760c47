"""`python3 -m bench [--quick] [--only a,b] [--docs DIR] [--keep]`: the whole benchmark, one run.

--only takes contenders (limit, naive, shell, vfs-notifier: the suite of issue 4) and scenarios
(rmrf, rescan, outage, burst-newdir, check, memory: the loop under stress, bench/stress.py, run for
the daemon at --before-rev and for the working tree or --daemon-rev, side by side).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time

from . import machine, media, report, stress_report
from .contenders import ALL, DAEMON, Setup, daemon_available, export_daemon
from .db import RowWatcher
from .mariadb import MariaDB
from .notify import NotifyListener
from .scenarios import Bench, Config
from .stress import SCENARIOS, Stress, StressConfig, Variant

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def poll_rtt_ms(server: MariaDB) -> float:
    params = server.fresh_database("rtt")
    w = RowWatcher(params)
    t0 = time.perf_counter()
    for _ in range(500):
        w.poll()
    ms = (time.perf_counter() - t0) / 500 * 1000
    w.close()
    server.drop(params)
    return ms


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a tenth of the sizes: checks the harness")
    ap.add_argument("--scale", type=float, default=None, help="size factor (default 1, --quick 0.1)")
    ap.add_argument("--only", default=",".join(ALL + SCENARIOS),
                    help=f"comma-separated contenders {ALL} and/or scenarios {SCENARIOS}")
    ap.add_argument("--docs", default=os.path.join(REPO, "docs"), help="where the report goes")
    ap.add_argument("--workdir", default=None, help="scratch directory (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--daemon-rev", default=None,
                    help="measure vfs_notifier/ as committed at this git revision (e.g. HEAD) "
                         "instead of the working tree")
    ap.add_argument("--before-rev", default="fa80ad9",
                    help="the scenarios' \"before\" column: vfs_notifier/ as committed at this revision")
    sizes = StressConfig()
    for flag, attr, kind, what in (
            ("--rmrf-dirs", "rmrf_dirs", int, "directories (each with a video) removed by rm -rf"),
            ("--rmrf-timeout", "rmrf_timeout", float, "seconds to wait for the daemon to catch up "
                                                      "after the rm -rf"),
            ("--rescan-files", "rescan_files", int, "files of the registered tree rescanned"),
            ("--rescan-interval", "rescan_interval", float, "VFS_NOTIFIER_RESCAN_INTERVAL, seconds"),
            ("--outage-files", "outage_files", int, "files written while MariaDB is stopped"),
            ("--outage-hold", "outage_hold", float, "seconds MariaDB stays down after the last file"),
            ("--newdir-files", "newdir_files", int, "files of the burst into a new directory"),
            ("--newdir-short", "newdir_short", int, "files of the short burst into a new directory "
                                                    "(0: none)"),
            ("--newdir-repeat", "newdir_repeat", int, "bursts into a new directory per variant"),
            ("--check-files", "check_files", int, "files of the cold start with/without the check"),
            ("--check-repeat", "check_repeat", int, "cold starts per setting (median)"),
            ("--stress-mem-files", "mem_files", int, "files of the memory scenario"),
            ("--watchdog-usec", "watchdog_usec", int, "WATCHDOG_USEC given to the daemon")):
        scaled = attr.endswith(("_dirs", "_files"))
        ap.add_argument(flag, type=kind, default=None,
                        help=f"{what} (default {getattr(sizes, attr):,}"
                             + (", scaled by --scale)" if scaled else ")"))
    args = ap.parse_args(argv)
    only = args.only.split(",")
    unknown = [x for x in only if x not in ALL + SCENARIOS]
    if unknown:
        ap.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(ALL + SCENARIOS)}")
    contenders = tuple(c for c in ALL if c in only)
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    cfg = Config.scaled(scale, contenders)
    scfg = StressConfig(scenarios=tuple(x for x in SCENARIOS if x in only))
    if scale != 1:
        scfg.scale(scale)
    for flag in ("rmrf_dirs", "rmrf_timeout", "rescan_files", "rescan_interval", "outage_files", "outage_hold",
                 "newdir_files", "newdir_short", "newdir_repeat", "check_files", "check_repeat", "mem_files",
                 "watchdog_usec"):
        value = getattr(args, "stress_mem_files" if flag == "mem_files" else flag)
        if value is not None:
            setattr(scfg, flag, value)

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    workdir = args.workdir or tempfile.mkdtemp(prefix="vfs-bench-")
    os.makedirs(workdir, exist_ok=True)
    say(f"scratch directory {workdir}")
    media.use(os.path.join(workdir, "media"))   # real clips, made once by ffmpeg
    daemon_path, daemon_src = REPO, "working tree"
    if args.daemon_rev:
        daemon_path = os.path.join(workdir, "daemon-src")
        daemon_src = "commit " + export_daemon(REPO, args.daemon_rev, daemon_path)
    version = daemon_available(daemon_path) if DAEMON in contenders or scfg.scenarios else None
    if DAEMON in contenders and version is None:
        say("vfs-notifier is not runnable from this checkout yet: measuring the others only")
        cfg.contenders = tuple(c for c in contenders if c != DAEMON)
    variants = []
    if scfg.scenarios:
        before_path = os.path.join(workdir, "daemon-before")
        before_src = "commit " + export_daemon(REPO, args.before_rev, before_path)
        # The version each answers, so that the report shows which code really ran.
        variants = [Variant("before", f"{before_src} ({daemon_available(before_path)})", before_path),
                    Variant("after", f"{daemon_src} ({version})", daemon_path)]
    server = MariaDB(workdir)
    notify = NotifyListener(os.path.join(workdir, "notify.sock"))
    t0 = time.time()
    load_start = os.getloadavg()[0]
    try:
        server.start()
        say(f"MariaDB {server.version} on 127.0.0.1:{server.port}")
        base = os.path.join(workdir, "trees")
        setup = Setup(REPO, workdir, base, "http://bench.example/videos", notify,
                      daemon_path if args.daemon_rev else "")
        if contenders:
            results = Bench(cfg, setup, server, say).run()
        else:
            results = {"notes": []}
        results["classic"] = bool(contenders)
        if scfg.scenarios:
            results["stress"] = Stress(scfg, variants, setup, server, say).run()
        results["poll_rtt_ms"] = poll_rtt_ms(server)
        results["config"] = {k: (list(v) if isinstance(v, tuple) else v)
                             for k, v in vars(cfg).items()}
        results["machine"] = machine.describe(REPO, workdir, server.version, version)
        results["machine"]["daemon_source"] = daemon_src
        results["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        results["runtime_s"] = time.time() - t0
        results["command"] = " ".join(["scripts/bench", *argv])
        results["machine"]["loadavg"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
        if scale != 1:
            results["notes"].append(f"scaled run (factor {scale}): not the figures of record")
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        report.write(results, args.docs)
        say(f"wrote {args.docs}/PERFORMANCE.md and performance.png in {results['runtime_s']:.0f} s "
            f"(results: {workdir}/results.json)")
        if contenders:
            for goal, measured, verdict in report.goals(results):
                say(f"{verdict:10s} {goal}: {measured}")
        if "stress" in results:
            for line in stress_report.console(results["stress"]):
                say(line)
        for bad in results["mismatches"]:
            say(f"MISMATCH {bad}")
    finally:
        notify.close()
        server.stop()
        if not args.keep:
            shutil.rmtree(os.path.join(workdir, "trees"), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
