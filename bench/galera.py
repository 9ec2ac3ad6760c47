"""`python3 -m bench.galera [--files N] [--burst N] [--repeat N] [--docs DIR] [--daemon-rev REV]`:
the cold start, a burst and a takeover through nodes of a 3-node MariaDB Galera cluster, beside
the same on one MariaDB server, in one run (issue 22).

Both backends run on this machine with durable commits (innodb_flush_log_at_trx_commit=1, the
main benchmark's single server as Debian ships it). The service reaches the cluster as a user
configures it: MYSQL_HOST names node 1, database.nodes the other two. Rows are counted through
node 2, another node than the one the service writes to: what a consumer elsewhere sees, so the
cluster's replication is in the figures. Backends take turns, each run on a fresh database; the
median of --repeat runs is the figure. The table of figures is printed, and with --docs it
replaces the Galera section of DIR/PERFORMANCE.md (bench/report.py keeps that section when the
main benchmark rewrites the file).

The cluster is the test suite's (tests/support/galera.py): one recipe for a throwaway cluster,
kept where the tests that depend on it are.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import media, tree
from .contenders import Setup, daemon_available, export_daemon, start_daemon
from .db import VIDEOS_TABLE, DbParams, RowWatcher
from .mariadb import MariaDB
from .notify import NotifyListener
from .procs import PYTHON
from .report import GALERA_BEGIN as BEGIN, GALERA_END as END

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tests.support.galera import Galera  # noqa: E402

USER, PASSWORD = "bench", "bench-pw"
# Takeover after a SIGKILL: (lease, poll) — the tests' short setting, and the defaults (one run:
# each takes the lease plus a poll, 20 s).
TAKEOVERS = ((2.0, 0.5), (15.0, 5.0))
# As the main benchmark's single server: Debian's durable default, a 128 MB buffer pool, the
# default redo log size.
DURABLE = ("--innodb-flush-log-at-trx-commit=1", "--innodb-buffer-pool-size=128M",
           "--innodb-log-file-size=96M")


class OneServer:
    label = "one MariaDB server"

    def __init__(self, workdir: str) -> None:
        self.server = MariaDB(workdir)

    def start(self) -> None:
        self.server.start()
        self.version = self.server.version

    def fresh_database(self, label: str) -> tuple[DbParams, DbParams, dict[str, str]]:
        """(what the service is given, what the row counter reads through, extra settings)."""
        params = self.server.fresh_database(label)
        return params, params, {}

    def second(self, params: DbParams) -> tuple[DbParams, dict[str, str]]:
        """How a second instance (the standby) reaches the same database."""
        return params, {}

    def drop(self, params: DbParams) -> None:
        self.server.drop(params)

    def stop(self) -> None:
        self.server.stop()


class Cluster:
    label = "Galera, 3 nodes"

    def __init__(self, workdir: str) -> None:
        self.cluster = Galera(Path(workdir), options=DURABLE, gcache="128M")
        self._databases = 0

    def start(self) -> None:
        self.cluster.start()
        with self.cluster.nodes[0].connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
            cur.execute(f"GRANT ALL ON *.* TO '{USER}'@'%'")
            cur.execute("SELECT VERSION()")
            self.version = cur.fetchone()[0]
            cur.execute("SHOW STATUS LIKE 'wsrep_provider_version'")
            self.version += f", Galera {cur.fetchone()[1]}"

    def fresh_database(self, label: str) -> tuple[DbParams, DbParams, dict[str, str]]:
        self._databases += 1
        name = f"g{self._databases:03d}_{label}"[:64]
        first, second, third = self.cluster.nodes
        with first.connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{name}`")
            cur.execute(VIDEOS_TABLE)
        through = [DbParams(n.host, n.port, USER, PASSWORD, name) for n in (first, second)]
        nodes = {"VFS_NOTIFIER_DATABASE_NODES": f"{second.address},{third.address}"}
        return through[0], through[1], nodes

    def second(self, params: DbParams) -> tuple[DbParams, dict[str, str]]:
        """The standby through node 2, then nodes 3 and 1: the two hosts use two nodes."""
        first, second, third = self.cluster.nodes
        return (DbParams(second.host, second.port, USER, PASSWORD, params.database),
                {"VFS_NOTIFIER_DATABASE_NODES": f"{third.address},{first.address}"})

    def drop(self, params: DbParams) -> None:
        with self.cluster.nodes[0].connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{params.database}`")

    def stop(self) -> None:
        self.cluster.close()


class Run:
    def __init__(self, args: argparse.Namespace, setup: Setup, say) -> None:
        self.args, self.setup, self.say = args, setup, say

    def cold(self, backend, root: str, rep: int) -> dict:
        params, counted, extra = backend.fresh_database(f"cold{rep}")
        watcher = RowWatcher(counted)
        label = f"{type(backend).__name__.lower()}-cold-{rep}"
        proc = start_daemon(self.setup, params, root, label, extra_env=extra)
        t_done = watcher.wait_for(self.args.files, 60 + self.args.files / 500, alive=proc.alive)
        res = {"seconds": t_done - proc.t_start if t_done else None}
        res["exit_code"] = proc.stop()
        res["rows"], res["distinct"] = watcher.totals()
        watcher.close()
        backend.drop(params)
        self.say(f"cold  {backend.label:18s} {self.args.files:,} files: "
                 + (f"{res['seconds']:.2f} s" if t_done else f"timed out; log {proc.log_path}")
                 + f", {res['rows']:,} rows, {res['distinct']:,} distinct")
        return res

    def burst(self, backend, rep: int) -> dict:
        params, counted, extra = backend.fresh_database(f"burst{rep}")
        watcher = RowWatcher(counted)
        label = f"{type(backend).__name__.lower()}-burst-{rep}"
        root = os.path.join(self.setup.base_path, label)
        dirs = [os.path.join(root, f"d{d:02d}") for d in range(20)]
        for d in dirs:
            os.makedirs(d)
        mark = self.setup.notify.mark()
        proc = start_daemon(self.setup, params, root, label, extra_env=extra)
        res: dict = {}
        if self.setup.notify.ready_at(mark, proc.alive, 60) is None:
            res["error"] = f"not ready; log {proc.log_path}"
        else:
            time.sleep(1.0)
            n = self.args.burst
            writer = subprocess.Popen([PYTHON, "-m", "bench.writer", str(n), f"r{rep}", *dirs],
                                      cwd=REPO, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": REPO})
            t_rows = watcher.wait_for(n, 30 + n / 200, interval=0.02, alive=proc.alive)
            out, _ = writer.communicate()
            w = json.loads(out)
            res["writer_files_per_s"] = n / (w["t_last_close"] - w["t_start"])
            if t_rows:
                res.update({"files_per_s": n / (t_rows - w["t_start"]), "lag_s": t_rows - w["t_last_close"]})
            else:
                res["error"] = f"only {watcher.resync():,} of {n:,} rows"
        res["exit_code"] = proc.stop()
        res["rows"], res["distinct"] = watcher.totals()
        watcher.close()
        backend.drop(params)
        shutil.rmtree(root, ignore_errors=True)
        self.say(f"burst {backend.label:18s} {self.args.burst:,} files: "
                 + (f"{res['files_per_s']:,.0f} files/s, lag {res['lag_s']:.3f} s" if "files_per_s" in res
                    else res.get("error", "?"))
                 + f", {res['rows']:,} rows, {res['distinct']:,} distinct")
        return res


    def takeover(self, backend, lease: float, poll: float, rep: int) -> dict:
        """Two instances on one directory (on Galera through two nodes); the holder is killed
        with SIGKILL: how long until the lease names the standby, and until a file written
        just after the kill has its row."""
        params, counted, extra = backend.fresh_database(f"takeover{rep}")
        label = f"{type(backend).__name__.lower()}-takeover-{lease:g}-{rep}"
        root = os.path.join(self.setup.base_path, label)
        os.makedirs(root)
        timing = {"VFS_NOTIFIER_LEASE_SECONDS": f"{lease:g}", "FOLDER_POLL_INTERVAL": f"{poll:g}"}
        watcher = RowWatcher(counted)
        res: dict = {"lease": lease, "poll": poll}
        procs = []
        try:
            mark = self.setup.notify.mark()
            holder = start_daemon(self.setup, params, root, label + "-a", extra_env={**extra, **timing})
            procs.append(holder)
            if self.setup.notify.ready_at(mark, holder.alive, 60) is None:
                raise RuntimeError(f"the first instance is not ready; log {holder.log_path}")
            other, other_extra = backend.second(params)
            mark = self.setup.notify.mark()
            standby = start_daemon(self.setup, other, root, label + "-b", extra_env={**other_extra, **timing})
            procs.append(standby)
            if self.setup.notify.ready_at(mark, standby.alive, 60) is None:
                raise RuntimeError(f"the second instance is not ready; log {standby.log_path}")
            tree.write_file(os.path.join(root, "before.mp4"))
            if not watcher.wait_for(1, 30) or self._holder(watcher) != holder.pid:
                raise RuntimeError(f"the first instance does not hold the lease: {self._holder(watcher)}")
            time.sleep(poll)
            killed = time.time()
            holder.popen.kill()
            tree.write_file(os.path.join(root, "after.mp4"))
            deadline = time.monotonic() + lease + poll + 30
            while self._holder(watcher) != standby.pid and time.monotonic() < deadline:
                time.sleep(0.02)
            took = time.time() - killed
            t_row = watcher.wait_for(2, max(1.0, deadline - time.monotonic()))
            if self._holder(watcher) == standby.pid:
                res["seconds"] = took
            if t_row:
                res["row_s"] = t_row - killed
            res["rows"], res["distinct"] = watcher.totals()
        except (RuntimeError, OSError) as err:
            res["error"] = str(err)
            res["rows"], res["distinct"] = watcher.totals()
        finally:
            for proc in procs:
                proc.stop()
            watcher.close()
            backend.drop(params)
            shutil.rmtree(root, ignore_errors=True)
        self.say(f"takeover {backend.label:18s} lease {lease:g} s, poll {poll:g} s: "
                 + (f"{res['seconds']:.2f} s, the next file's row after {res.get('row_s', float('nan')):.2f} s"
                    if "seconds" in res else res.get("error", "no takeover"))
                 + f", {res['rows']} rows, {res['distinct']} distinct")
        return res

    @staticmethod
    def _holder(watcher: RowWatcher) -> int | None:
        """The pid the lease names ("host pid 1234"); None without a lease table or row."""
        with watcher.conn.cursor() as cur:
            cur.execute("SHOW TABLES LIKE 'vfs_notifier_leases'")
            if not cur.fetchone():
                return None
            cur.execute("SELECT holder FROM vfs_notifier_leases")
            found = cur.fetchone()
        pid = found[0].rsplit("pid ", 1)[-1].split()[0] if found and "pid " in found[0] else ""
        return int(pid) if pid.isdigit() else None


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if len(values) == len(runs) else None


def _runs(runs: list[dict], key: str, form: str) -> str:
    """"; runs a, b, c": every run's figure beside the median, when there are several."""
    if len(runs) < 2:
        return ""
    return "; runs " + ", ".join("—" if r.get(key) is None else form.format(r[key]) for r in runs)


def summary(results: dict) -> list[tuple[str, str, str]]:
    """(what, one server, Galera) rows of the table."""
    files, burst = results["files"], results["burst"]
    rows = []
    cells = []
    for key in ("one", "galera"):
        s = median_of(results[key]["cold"], "seconds")
        each = _runs(results[key]["cold"], "seconds", "{:.2f}")
        cells.append("—" if s is None else f"{s:.2f} s ({files / s:,.0f} files/s{each and each + ' s'})")
    rows.append((f"cold start, {files:,} files / {results['dirs']:,} dirs, empty table", *cells))
    cells = []
    for key in ("one", "galera"):
        rate, lag = median_of(results[key]["burst"], "files_per_s"), median_of(results[key]["burst"], "lag_s")
        writer = median_of(results[key]["burst"], "writer_files_per_s")
        each = _runs(results[key]["burst"], "files_per_s", "{:,.0f}")
        cells.append("—" if rate is None else
                     f"**{rate:,.0f}/s**, lag {lag:.3f} s (writer {writer:,.0f}/s{each and each + '/s'})")
    rows.append((f"burst of {burst:,} files from a writer process, into 20 dirs", *cells))
    for setting in results["one"]["takeover"]:
        lease, poll = setting.split("/")
        cells = []
        for key in ("one", "galera"):
            runs = results[key]["takeover"][setting]
            took, row = median_of(runs, "seconds"), median_of(runs, "row_s")
            cells.append("—" if took is None else f"{took:.2f} s; the next file's row after {row:.2f} s"
                         if row is not None else f"{took:.2f} s")
        count = len(results["one"]["takeover"][setting])
        rows.append((f"takeover after SIGKILL of the holder, lease {lease} s, poll {poll} s "
                     f"({'median of ' + str(count) if count > 1 else 'one run'})", *cells))
    cells = []
    for key in ("one", "galera"):
        runs = results[key]["cold"] + results[key]["burst"] + [
            r for runs in results[key]["takeover"].values() for r in runs]
        wrong = sum(1 for r in runs if r["rows"] != r["distinct"])
        cells.append(f"{len(runs)} runs, {wrong} with a doubled row")
    rows.append(("rows = distinct paths after every run", *cells))
    return rows


def markdown(results: dict) -> str:
    lines = [BEGIN, "## One server and a Galera cluster (issue 22)", "",
             f"Measured by `python3 -m bench.galera` on {results['date']}, one run on the machine below "
             f"({results['command']}, {results['runtime_s'] / 60:.1f} minutes): the service "
             f"({results['daemon']}) through node 1 of a 3-node Galera cluster ({results['galera_version']}), "
             f"the other two nodes as database.nodes, beside the same on one MariaDB server "
             f"({results['one_version']}); the median of {results['repeat']} runs each, the two taking "
             "turns, every run on a fresh database.", "",
             "| scenario | one MariaDB server | Galera, 3 nodes |", "|---|---|---|"]
    lines += [f"| {what} | {one} | {galera} |" for what, one, galera in summary(results)]
    lines += ["",
              "- Durable commits on both (innodb_flush_log_at_trx_commit=1). The three nodes run on the same "
              "2 CPUs as the service and the writer, over loopback: a cluster of three hosts pays a network "
              "round trip per commit instead, and has three times the CPU.",
              "- Rows are counted through node 2, not the node the service writes to: the figures include "
              "the time a row takes to be applied on another node, as a consumer elsewhere sees it.",
              "- A burst is measured against its writer: where the writer's own rate (in each cell) is close "
              "to the burst's, the writer set the pace, not the service.",
              "- Takeover: two instances on one directory (on Galera the standby through node 2); the time "
              "from the holder's SIGKILL until the lease names the standby, and until a file written just "
              "after the kill has its row. The bound is the lease plus one poll.",
              "- Compare within this table: the other figures of this page come from other runs, at "
              "other loads.",
              f"- Load average at the start and the end of the run: {results['loadavg'][0]:.2f}, "
              f"{results['loadavg'][1]:.2f} (the machine is shared"
              + (f"; the run at niceness {results['nice']}" if results.get("nice") else "") + ").", END]
    return "\n".join(lines) + "\n"


def put_section(docs: str, section: str) -> None:
    """Replace the Galera section of PERFORMANCE.md, or add it before the machine's description."""
    path = os.path.join(docs, "PERFORMANCE.md")
    text = open(path).read() if os.path.exists(path) else "# Performance\n\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        text = head + section.rstrip("\n") + rest.partition(END)[2]
    else:
        head, sep, tail = text.partition("## Machine and versions")
        text = head + section + "\n" + sep + tail if sep else text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench.galera", description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100_000, help="files of the cold start (default 100,000)")
    ap.add_argument("--burst", type=int, default=20_000, help="files of the burst (default 20,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per backend and scenario (median)")
    ap.add_argument("--docs", default=None, help="write the section into DIR/PERFORMANCE.md")
    ap.add_argument("--daemon-rev", default=None, help="measure vfs_notifier/ as committed at this revision")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args(argv)

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    workdir = tempfile.mkdtemp(prefix="vfs-bench-galera-")
    os.chmod(workdir, 0o755)     # the cluster's nodes run as `mysql` below it
    say(f"scratch directory {workdir}")
    media.use(os.path.join(workdir, "media"))
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    daemon_path, source = REPO, f"working tree at {head.stdout.strip() or 'an unknown commit'}"
    if args.daemon_rev:
        daemon_path = os.path.join(workdir, "daemon-src")
        source = "commit " + export_daemon(REPO, args.daemon_rev, daemon_path)
    version = daemon_available(daemon_path)
    notify = NotifyListener(os.path.join(workdir, "notify.sock"))
    base = os.path.join(workdir, "trees")
    setup = Setup(REPO, workdir, base, "http://bench.example/videos", notify,
                  daemon_path if args.daemon_rev else "")
    backends = {"one": OneServer(workdir), "galera": Cluster(workdir)}
    t0, load = time.time(), os.getloadavg()[0]
    try:
        for key, backend in backends.items():
            started = time.monotonic()
            backend.start()
            say(f"{backend.label}: {backend.version}, up in {time.monotonic() - started:.1f} s")
        dirs = max(1, args.files // 100)
        root = os.path.join(base, "cold")
        started = time.monotonic()
        tree.generate(root, args.files, dirs)
        say(f"tree of {args.files:,} files in {dirs:,} dirs written in {time.monotonic() - started:.1f} s")
        time.sleep(3)   # older than the service's settling wait: a cold start meets old files
        run = Run(args, setup, say)
        results: dict = {key: {"cold": [], "burst": [], "takeover": {f"{lease:g}/{poll:g}": []
                                                                  for lease, poll in TAKEOVERS}}
                         for key in backends}
        for rep in range(args.repeat):
            order = list(backends) if rep % 2 == 0 else list(backends)[::-1]
            for key in order:
                results[key]["cold"].append(run.cold(backends[key], root, rep))
            for key in order:
                results[key]["burst"].append(run.burst(backends[key], rep))
            for lease, poll in TAKEOVERS:
                if rep == 0 or lease < 10:     # the defaults' takeover once: 20 s each
                    for key in order:
                        results[key]["takeover"][f"{lease:g}/{poll:g}"].append(
                            run.takeover(backends[key], lease, poll, rep))
    finally:
        for backend in backends.values():
            backend.stop()
        notify.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results.update({"files": args.files, "dirs": dirs, "burst": args.burst, "repeat": args.repeat,
                    "daemon": f"{version}, {source}", "one_version": backends["one"].version,
                    "galera_version": backends["galera"].version,
                    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "command": " ".join(["python3 -m bench.galera", *argv]), "runtime_s": time.time() - t0,
                    "loadavg": [load, os.getloadavg()[0]], "nice": os.nice(0)})
    table = [(what, one.replace("**", ""), galera.replace("**", "")) for what, one, galera in summary(results)]
    width, middle = max(len(r[0]) for r in table), max(len(r[1]) for r in table)
    print(f"\n{'':{width}}  {'one MariaDB server':{middle}}  Galera, 3 nodes")
    for what, one, galera in table:
        print(f"{what:{width}}  {one:{middle}}  {galera}")
    if args.docs:
        put_section(args.docs, markdown(results))
        say(f"wrote the Galera section of {args.docs}/PERFORMANCE.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
