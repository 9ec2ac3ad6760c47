"""The six scenarios of issue 4, each contender on the same tree and a fresh database each time.

Every time is wall-clock from the moment the harness starts the contender's process to the moment
a separate connection sees the last row, so interpreter start-up counts for everyone alike.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field

from . import tree
from .contenders import (DAEMON, LIMIT, NAIVE, SHELL, Setup, start_daemon, start_limit,
                         start_naive, start_shell)
from .db import INSERT_ROW, RowWatcher, connect, row_for
from .mariadb import MariaDB
from .procs import PYTHON, Proc, cpu_ticks, family_memory_kb, session_memory_kb


@dataclass
class Config:
    sizes: tuple[int, ...] = (10_000, 30_000, 100_000, 300_000)
    main: int = 100_000                 # scenarios 1-4 run on this tree
    files_per_dir: int = 100            # 100,000 files in 1,000 directories
    mem_files: int = 100_000
    mem_dirs: int = 10_000
    burst: dict[str, int] = field(default_factory=lambda: {DAEMON: 20_000, NAIVE: 5_000,
                                                            SHELL: 1_000})
    burst_repeat: int = 3               # bursts per contender: the median is the figure
    latency_files: int = 500
    latency_gap: float = 0.05           # idle time between two files of the latency run
    naive_max: int = 100_000            # larger naive cold starts are extrapolated from this one
    repeat: int = 3                     # limit and vfs-notifier cold starts: the median of these
    live_dirs: int = 20                 # burst files are spread over this many directories
    contenders: tuple[str, ...] = (LIMIT, NAIVE, SHELL, DAEMON)
    # vfs-notifier's STATUS once its start-up walk is over and nothing waits to be written
    reconciled: str = r"^STATUS=Watching (?!.*waiting)"

    @classmethod
    def scaled(cls, factor: float, contenders: tuple[str, ...]) -> "Config":
        """A smaller run with the same shape, for checking the harness itself."""
        c = cls(contenders=contenders)
        if factor == 1:
            return c
        s = lambda n: max(100, int(n * factor))  # noqa: E731
        c.sizes = tuple(s(n) for n in c.sizes)
        c.main, c.mem_files, c.mem_dirs = s(c.main), s(c.mem_files), max(10, int(c.mem_dirs * factor))
        c.naive_max = s(c.naive_max)
        c.burst = {k: s(v) for k, v in c.burst.items()}
        c.latency_files = max(100, int(c.latency_files * factor))
        return c


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, int(-(-p * len(ordered) // 100)))
    return ordered[rank - 1]


class Bench:
    def __init__(self, cfg: Config, setup: Setup, server: MariaDB, log=print) -> None:
        self.cfg, self.setup, self.server, self.say = cfg, setup, server, log
        self.results: dict = {"cold": {}, "warm": {}, "burst": {}, "latency": {}, "memory": {},
                              "trees": {}, "notes": []}
        self.trees: dict[int, str] = {}
        self.mem_tree = ""

    # ---- trees -------------------------------------------------------------------------
    def make_trees(self) -> None:
        specs = [(n, max(1, n // self.cfg.files_per_dir), f"t{n}") for n in self.cfg.sizes]
        specs.append((self.cfg.mem_files, self.cfg.mem_dirs, "mem"))
        for files, dirs, name in specs:
            root = os.path.join(self.setup.base_path, name)
            t0 = time.perf_counter()
            tree.generate(root, files, dirs)
            secs = time.perf_counter() - t0
            if name == f"t{self.cfg.main}":
                for c in (DAEMON, NAIVE, SHELL):
                    for d in range(self.cfg.live_dirs):
                        os.makedirs(os.path.join(root, "live", c, f"d{d:02d}"))
                    os.makedirs(os.path.join(root, "live", c, "latency"))
            self.results["trees"][name] = {"files": files, "dirs": dirs, "write_s": secs,
                                           "files_per_s": files / secs}
            self.say(f"tree {name}: {files} files in {dirs} dirs, written in {secs:.1f} s "
                     f"({files / secs:,.0f} files/s)")
            if name == "mem":
                self.mem_tree = root
            else:
                self.trees[files] = root
        # The daemon lets files younger than 2 s settle before a walk registers them; a cold
        # start meets old files, so the trees must be older than that before anyone starts.
        time.sleep(3)

    # ---- helpers -----------------------------------------------------------------------
    def _db(self, label: str):
        params = self.server.fresh_database(label.replace("-", "_"))
        return params, RowWatcher(params)

    def _finish(self, watcher: RowWatcher, params, keep: bool = False) -> tuple[int, int]:
        rows, distinct = watcher.totals()
        if not keep:
            watcher.close()
            self.server.drop(params)
        return rows, distinct

    def _daemon_ready(self, mark: int, proc: Proc, timeout: float = 120) -> float | None:
        return self.setup.notify.ready_at(mark, proc.alive, timeout)

    # ---- scenario 1 and 6: cold start at every size -------------------------------------
    def cold(self, contenders: list[str], size: int, repeat: int = 1,
             keep: bool = False) -> dict[str, dict]:
        """Cold starts on a fresh database each, the contenders taking turns (so that load from
        elsewhere hits them alike); the median is the figure. With `keep`, each contender's last
        database (and daemon) stay for the warm restart: returned as states."""
        runs: dict[str, list[dict]] = {c: [] for c in contenders}
        states: dict[str, dict] = {}
        for i in range(repeat):
            for c in (contenders if i % 2 == 0 else contenders[::-1]):
                res, state = self._cold_once(c, size, keep=keep and i == repeat - 1)
                runs[c].append(res)
                if state:
                    states[c] = state
        for c, rs in runs.items():
            times = [r["seconds"] for r in rs if r["seconds"] is not None]
            res = dict(rs[-1])
            res["seconds"] = statistics.median(times) if len(times) == len(rs) else None
            if repeat > 1:
                res["runs_s"] = [r["seconds"] for r in rs]
                if res["seconds"] is not None:
                    self.say(f"cold {c:12s} {size:>7,} files: median {res['seconds']:.2f} s "
                             f"({size / res['seconds']:,.0f} files/s) of {repeat}")
            self.results["cold"].setdefault(c, {})[size] = res
        return states

    def _cold_once(self, contender: str, size: int, keep: bool) -> tuple[dict, dict]:
        root = self.trees[size]
        label = f"{contender}-cold-{size}"
        params, watcher = self._db(label)
        timeout = 30 + size / (200 if contender == NAIVE else 1000)
        mark = self.setup.notify.mark()
        if contender == LIMIT:
            proc = start_limit(self.setup, params, root, "cold", label)
        elif contender == NAIVE:
            proc = start_naive(self.setup, params, root, "cold", label)
        else:
            proc = start_daemon(self.setup, params, root, label)
        t0 = proc.t_start
        t_done = watcher.wait_for(size, timeout, alive=proc.alive)
        res: dict = {"files": size, "seconds": (t_done - t0) if t_done else None,
                     "measured": True}
        if contender == DAEMON:
            ready = self.setup.notify.wait_for(r"^READY=1", mark, 0)
            res["ready_s"] = ready[0] - t0 if ready else None
            if not keep:
                res["exit_code"] = proc.stop()
        else:
            proc.wait(60)
            try:
                res.update({"inner": json.loads(proc.output().strip().splitlines()[-1])})
            except (ValueError, IndexError):
                pass
            proc.stop()
        res["rows"], res["distinct"] = watcher.totals()
        res["wrong_rows"] = watcher.wrong_rows(root, self.setup.base_path, self.setup.base_url)
        if res["seconds"] is None:
            res["error"] = f"timed out after {timeout:.0f} s with {res['rows']} rows; log {proc.log_path}"
        self.say(f"cold {contender:12s} {size:>7,} files: " + (
            f"{res['seconds']:.2f} s ({size / res['seconds']:,.0f} files/s)"
            if res["seconds"] else res["error"]))
        if not keep:
            watcher.close()
            self.server.drop(params)
            return res, {}
        state = {"params": params, "watcher": watcher}
        if contender == DAEMON:
            state["proc"] = proc
        return res, state

    # ---- scenario 2: warm restart ------------------------------------------------------
    def warm(self, states: dict[str, dict]) -> dict | None:
        """Warm restarts, the limit's reference and the daemon taking turns, `repeat` times
        each; the medians are the figures. Returns the last daemon, still running."""
        runs: dict[str, list[dict]] = {LIMIT: [], DAEMON: []}
        live = None
        for i in range(self.cfg.repeat):
            if LIMIT in states:
                runs[LIMIT].append(self._warm_limit_once(states[LIMIT]))
            if DAEMON in states:
                live = self._warm_daemon_once(live or states[DAEMON], first=live is None)
                runs[DAEMON].append(live.pop("result"))
        for c, rs in runs.items():
            if not rs:
                continue
            res = dict(rs[-1])
            times = [r["seconds"] for r in rs]
            res["seconds"] = statistics.median(times) if None not in times else None
            res["inserted"] = sum(r["inserted"] for r in rs)
            res["runs_s"] = times
            self.results["warm"][c] = res
            self.say(f"warm {c:12s} median {_fmt(res['seconds'])} s of {len(rs)}, "
                     f"inserted {res['inserted']}")
        if LIMIT in states:
            states[LIMIT]["watcher"].close()
            self.server.drop(states[LIMIT]["params"])
        return live

    def _warm_limit_once(self, state: dict) -> dict:
        root = self.trees[self.cfg.main]
        params, watcher = state["params"], state["watcher"]
        before = watcher.resync()
        proc = start_limit(self.setup, params, root, "warm", "limit-warm")
        proc.wait(300)
        inner = json.loads(proc.output().strip().splitlines()[-1])
        secs = time.time() - proc.t_start
        proc.stop()
        self.say(f"warm limit (bare walk + one read of the registered paths): {secs:.2f} s")
        return {"files": self.cfg.main, "seconds": secs, "inserted": watcher.resync() - before,
                "inner": inner, "measured": True}

    def warm_naive(self, state: dict) -> None:
        size = self.cfg.naive_max
        params, watcher = state["params"], state["watcher"]
        before = watcher.resync()
        proc = start_naive(self.setup, params, self.trees[size], "cold", "naive-warm")
        code = proc.wait(30 + size / 100)
        secs = time.time() - proc.t_start
        proc.stop()
        res = {"files": size, "seconds": secs if code == 0 else None,
               "inserted": watcher.resync() - before, "measured": True}
        self.results["warm"][NAIVE] = res
        self.say(f"warm naive {size} files: {secs:.2f} s, inserted {res['inserted']}")
        watcher.close()
        self.server.drop(params)

    def _warm_daemon_once(self, state: dict, first: bool) -> dict:
        """Stop the running daemon, start it again, time the reconciling walk."""
        params, watcher = state["params"], state["watcher"]
        code = state["proc"].stop()
        if first:
            self.results["cold"][DAEMON][self.cfg.main]["exit_code"] = code
        before = watcher.resync()
        mark = self.setup.notify.mark()
        proc = start_daemon(self.setup, params, self.trees[self.cfg.main], "vfs-notifier-warm")
        ready = self._daemon_ready(mark, proc)
        done = self.setup.notify.wait_for(self.cfg.reconciled, mark, 120)
        how = "STATUS message"
        if done is None or not proc.alive():
            t_done, how = cpu_idle_since(proc.pid, proc.t_start), "CPU went idle"
        else:
            t_done = done[0]
        time.sleep(1.0)
        res = {"files": self.cfg.main, "seconds": t_done - proc.t_start if t_done else None,
               "ready_s": ready - proc.t_start if ready else None,
               "inserted": watcher.resync() - before, "measured": True, "detected_by": how,
               "status": done[1] if done else None}
        self.say(f"warm vfs-notifier: {_fmt(res['seconds'])} s ({how}), inserted {res['inserted']}")
        return {"params": params, "watcher": watcher, "proc": proc, "result": res}

    # ---- scenarios 3 and 4: burst and latency, on a running contender -------------------
    def start_watching(self, contender: str) -> dict:
        root = self.trees[self.cfg.main]
        label = f"{contender}-live"
        params, watcher = self._db(label)
        if contender == NAIVE:
            proc = start_naive(self.setup, params, root, "watch", label)
            ready = proc.wait_output("ready", 120)
        else:
            proc = start_shell(self.setup, params, root, label)
            ready = proc.wait_output("Watches established.", 120)
        if ready is None:
            raise RuntimeError(f"{contender} did not get ready; see {proc.log_path}")
        time.sleep(0.5)
        return {"params": params, "watcher": watcher, "proc": proc}

    def burst(self, contender: str, state: dict) -> None:
        """Bursts from a separate writer process; the median run is the figure (the writer
        shares two CPUs with the contender and the database, so its own speed varies)."""
        runs = [self._burst_once(contender, state, rep) for rep in range(self.cfg.burst_repeat)]
        done = [r for r in runs if "files_per_s" in r]
        if len(done) == len(runs):
            res = dict(sorted(done, key=lambda r: r["files_per_s"])[len(done) // 2])
            res["lag_s"] = statistics.median(r["lag_s"] for r in done)
        else:
            res = dict(next(r for r in runs if "files_per_s" not in r))
        res["runs"] = [{k: r.get(k) for k in ("files_per_s", "lag_s", "writer_files_per_s")}
                       for r in runs]
        res["rows"] = sum(r["rows"] for r in runs) // len(runs)
        res["distinct"] = sum(r["distinct"] for r in runs) // len(runs)
        res["queue_overflows"] = state["proc"].output().count("queue overflow")
        self.results["burst"][contender] = res
        if len(runs) > 1 and "files_per_s" in res:
            self.say(f"burst {contender:12s} median: {res['files_per_s']:,.0f} files/s, "
                     f"lag {res['lag_s']:.3f} s")

    def _burst_once(self, contender: str, state: dict, rep: int) -> dict:
        n = self.cfg.burst[contender]
        watcher = state["watcher"]
        time.sleep(1)
        base = watcher.resync()
        dirs = [os.path.join(self.trees[self.cfg.main], "live", contender, f"d{d:02d}")
                for d in range(self.cfg.live_dirs)]
        writer = subprocess.Popen([PYTHON, "-m", "bench.writer", str(n), f"r{rep}", *dirs],
                                  cwd=self.setup.repo, stdout=subprocess.PIPE,
                                  env={**os.environ, "PYTHONPATH": self.setup.repo})
        timeout = 30 + n / 500   # a stalled service must not hold the run for long
        t_rows = watcher.wait_for(base + n, timeout, interval=0.02)
        out, _ = writer.communicate()
        w = json.loads(out)
        res = {"files": n, "writer_files_per_s": n / (w["t_last_close"] - w["t_start"])}
        if t_rows:
            res.update({"seconds": t_rows - w["t_start"],
                        "files_per_s": n / (t_rows - w["t_start"]),
                        "lag_s": t_rows - w["t_last_close"]})
        else:
            res["error"] = f"only {watcher.resync() - base} of {n} rows after {timeout:.0f} s"
        rows, distinct = watcher.totals()
        res["rows"], res["distinct"] = rows - base, distinct - base
        self.say(f"burst {contender:12s} {n:>6,} files: " + (
            f"{res['files_per_s']:,.0f} files/s, lag {res['lag_s']:.3f} s "
            f"(writer {res['writer_files_per_s']:,.0f} files/s)" if t_rows else res["error"]))
        return res

    def latency(self, contender: str, state: dict) -> None:
        watcher = state["watcher"]
        directory = os.path.join(self.trees[self.cfg.main], "live", contender, "latency")
        count = watcher.resync()
        samples: list[float] = []
        misses = in_a_row = 0
        time.sleep(3)  # at idle: let the database finish flushing what the burst wrote
        for i in range(self.cfg.latency_files):
            tree.write_file(os.path.join(directory, f"latence {i:04d} é.mp4"))
            t_close = time.time()
            deadline = time.monotonic() + 5
            while watcher.poll() <= count:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.0002)
            t_seen = time.time()
            if watcher.count > count:
                samples.append((t_seen - t_close) * 1000)
                count = watcher.count
                in_a_row = 0
            else:
                misses += 1
                in_a_row += 1
                count = watcher.resync()
                if in_a_row >= 5:
                    self.results["notes"].append(f"{contender}: latency run stopped after "
                                                 f"{misses} files whose rows never came (5 s each)")
                    break
            time.sleep(self.cfg.latency_gap)
        res = _latency_stats(samples, self.cfg.latency_files, misses)
        self.results["latency"][contender] = res
        self.say(f"latency {contender:12s}: " + (
            f"p50 {res['p50_ms']:.1f} ms, p95 {res['p95_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms"
            if samples else "no sample") + (f", {misses} missed" if misses else ""))

    def latency_limit(self) -> None:
        """The floor the database sets: one autocommitted single-row INSERT by PyMySQL (no file,
        no inotify), timed from just before the INSERT to the moment the poller sees the row."""
        params, watcher = self._db("limit-latency")
        conn = connect(params, autocommit=True)   # one round trip: the INSERT commits itself
        root = self.trees[self.cfg.main]
        samples = []
        time.sleep(3)
        with conn.cursor() as cur:
            for i in range(self.cfg.latency_files):
                path = os.path.join(root, "live", "limit", f"latence {i:04d} é.mp4")
                t0 = time.time()
                cur.execute(INSERT_ROW, row_for(path, root, self.setup.base_path, self.setup.base_url))
                while watcher.poll() <= i:
                    time.sleep(0.0002)
                samples.append((time.time() - t0) * 1000)
                time.sleep(self.cfg.latency_gap)
        conn.close()
        self._finish(watcher, params)
        self.results["latency"][LIMIT] = _latency_stats(samples, self.cfg.latency_files, 0)
        r = self.results["latency"][LIMIT]
        self.say(f"latency limit (one autocommit INSERT): p50 {r['p50_ms']:.1f} ms, "
                 f"p95 {r['p95_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")

    def stop_live(self, contender: str, state: dict) -> None:
        code = state["proc"].stop()
        # Put the tree back as generated, so that later cold starts see exactly `main` files.
        live = os.path.join(self.trees[self.cfg.main], "live", contender)
        for directory in os.listdir(live):
            for name in os.listdir(os.path.join(live, directory)):
                os.unlink(os.path.join(live, directory, name))
        if contender == DAEMON:
            self.results["burst"].setdefault(DAEMON, {})["exit_code"] = code
        state["watcher"].close()
        self.server.drop(state["params"])

    # ---- scenario 5: memory while watching mem_dirs directories -------------------------
    def memory(self, contender: str) -> None:
        label = f"{contender}-memory"
        params, watcher = self._db(label)
        root = self.mem_tree
        res: dict = {"files": self.cfg.mem_files, "dirs": self.cfg.mem_dirs}
        mark = self.setup.notify.mark()
        if contender == DAEMON:
            proc = start_daemon(self.setup, params, root, label)
            t = watcher.wait_for(self.cfg.mem_files, 60 + self.cfg.mem_files / 1000,
                                 alive=proc.alive)
            res["cold_s"] = t - proc.t_start if t else None
            res["ready"] = self._daemon_ready(mark, proc, 5) is not None
            res["note"] = "after registering every file (cold start), then 2 s idle"
        elif contender == NAIVE:
            proc = start_naive(self.setup, params, root, "watch", label)
            res["ready"] = proc.wait_output("ready", 300) is not None
            res["note"] = "watches in place (it does not scan)"
        else:
            proc = start_shell(self.setup, params, root, label)
            res["ready"] = proc.wait_output("Watches established.", 300) is not None
            res["note"] = "inotifywait + bash, summed (it does not scan)"
        time.sleep(2)
        mem = session_memory_kb(proc.pid) if contender == SHELL else family_memory_kb(proc.pid)
        res["rss_mb"], res["hwm_mb"] = mem["VmRSS"] / 1024, mem["VmHWM"] / 1024
        res["exit_code"] = proc.stop()
        watcher.close()
        self.server.drop(params)
        self.results["memory"][contender] = res
        self.say(f"memory {contender:12s}: VmRSS {res['rss_mb']:.1f} MB, VmHWM {res['hwm_mb']:.1f} MB")

    # ---- the whole run -----------------------------------------------------------------
    def safely(self, what: str, fn, *args):
        """Run one scenario step; a failure is noted in the report and the run goes on."""
        try:
            return fn(*args)
        except Exception as err:  # noqa: BLE001 - any failure of one step must not lose the rest
            note = f"{what} failed: {type(err).__name__}: {err}"
            self.results["notes"].append(note)
            self.say(note)
            return None

    def run(self) -> dict:
        cfg = self.cfg
        has = lambda c: c in cfg.contenders  # noqa: E731
        self.make_trees()
        for size in cfg.sizes:
            main = size == cfg.main
            pair = [c for c in (LIMIT, DAEMON) if has(c)]
            states = self.safely(f"cold {size}", self.cold, pair, size, cfg.repeat, main) or {}
            if states and DAEMON in states and not states[DAEMON]["proc"].alive():
                self.results["notes"].append("vfs-notifier exited after its cold start")
                states.pop(DAEMON)["watcher"].close()
            live = self.safely("warm restart", self.warm, states) if states else None
            if live:
                self.safely("vfs-notifier burst", self.burst, DAEMON, live)
                self.safely("vfs-notifier latency", self.latency, DAEMON, live)
                self.safely("vfs-notifier stop", self.stop_live, DAEMON, live)
            if has(NAIVE) and size <= cfg.naive_max:
                keep = size == cfg.naive_max
                states = self.safely(f"naive cold {size}", self.cold, [NAIVE], size, 1, keep) or {}
                if NAIVE in states:
                    self.safely("naive warm", self.warm_naive, states[NAIVE])
        if has(LIMIT):
            self.safely("limit latency", self.latency_limit)
        for c in (NAIVE, SHELL):
            if has(c):
                live = self.safely(f"{c} start", self.start_watching, c)
                if live:
                    self.safely(f"{c} burst", self.burst, c, live)
                    self.safely(f"{c} latency", self.latency, c, live)
                    self.safely(f"{c} stop", self.stop_live, c, live)
        for c in (DAEMON, NAIVE, SHELL):
            if has(c):
                self.safely(f"{c} memory", self.memory, c)
        self.extrapolate()
        return self.results

    def extrapolate(self) -> None:
        """Naive cold starts above naive_max: its measured time per file times the file count."""
        naive = self.results["cold"].get(NAIVE, {})
        if self.cfg.naive_max in naive and naive[self.cfg.naive_max].get("seconds"):
            per_file = naive[self.cfg.naive_max]["seconds"] / self.cfg.naive_max
            for size in self.cfg.sizes:
                if size not in naive:
                    naive[size] = {"files": size, "seconds": per_file * size, "measured": False,
                                   "from": self.cfg.naive_max}
        warm = self.results["warm"].get(NAIVE)
        if warm and warm.get("seconds") and warm["files"] != self.cfg.main:
            warm["measured_files"], warm["measured_s"] = warm["files"], warm["seconds"]
            warm["seconds"] = warm["seconds"] / warm["files"] * self.cfg.main
            warm["files"], warm["measured"] = self.cfg.main, False


def _latency_stats(samples: list[float], files: int, misses: int) -> dict:
    res: dict = {"files": files, "missed": misses}
    if samples:
        res.update({"p50_ms": percentile(samples, 50), "p95_ms": percentile(samples, 95),
                    "p99_ms": percentile(samples, 99), "max_ms": max(samples),
                    "mean_ms": statistics.fmean(samples),
                    "over_10ms": sum(1 for x in samples if x >= 10),
                    "samples_ms": [round(x, 3) for x in samples]})
    return res


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def cpu_idle_since(pid: int, t_start: float, quiet: float = 0.5, timeout: float = 120) -> float | None:
    """When a process stopped using the CPU: the last time its CPU clock moved before `quiet`
    seconds without movement. A fallback for telling when a daemon has finished its start-up work."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        return cpu_ticks(pid) / tick

    deadline = time.monotonic() + timeout
    last, last_change = cpu(), time.time()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        try:
            now = cpu()
        except OSError:
            return None
        if now != last:
            last, last_change = now, time.time()
        elif time.time() - last_change >= quiet:
            return last_change
    return None
