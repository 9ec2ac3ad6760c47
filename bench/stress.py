"""The loop under stress (issues 9, 10 and 14), side by side for two revisions of the daemon.

Each scenario runs the same way for every variant ("before": the daemon as committed at a given
revision; "after": the working tree or --daemon-rev), one daemon at a time, each on a fresh
database. Everything is measured from outside: the longest loop turn from the gaps between the
watchdog pings the daemon sends to our NOTIFY_SOCKET (WATCHDOG_USEC set, so it pings every half of
it while its loop turns), latency from rows seen by a separate connection, memory from /proc.

    rmrf          `rm -rf` of a tree of D directories, each holding a video, while watched
    rescan        a periodic rescan (VFS_NOTIFIER_RESCAN_INTERVAL) of an N-file registered tree
    outage        N files arrive while MariaDB is stopped: VmRSS over time, then the catch-up
    burst-newdir  N files written into a directory made just before (lag after the last close)
    check         cold start of N files with VFS_NOTIFIER_CHECK_STRUCTURE=1 and =0, and the limit
    memory        VmRSS at N files after a cold start and after a restart (registered versions)
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass

from . import tree
from .contenders import Setup, start_daemon, start_limit
from .db import RowWatcher, connect
from .mariadb import MariaDB
from .probes import DirOpens, LatencyProbe, Sampler, latency_stats, longest_gap
from .procs import PYTHON, Proc, family_memory_kb

SCENARIOS = ("rmrf", "rescan", "outage", "burst-newdir", "check", "memory")


@dataclass
class Variant:
    key: str      # "before" / "after": the column
    label: str    # what was measured: "commit fa80ad9", "working tree"
    path: str     # where its vfs_notifier/ is imported from (PYTHONPATH)


@dataclass
class StressConfig:
    scenarios: tuple[str, ...] = SCENARIOS
    rmrf_dirs: int = 30_000
    rmrf_timeout: float = 600.0       # give up waiting for the daemon to catch up after this
    rescan_files: int = 100_000
    rescan_interval: float = 10.0     # seconds between rescans (the service checks every 5 s)
    rescans: int = 2                  # rescans observed per variant
    outage_files: int = 50_000
    outage_hold: float = 10.0         # seconds the database stays down after the last file
    newdir_files: int = 20_000
    newdir_short: int = 1_000         # a burst the writer ends well within fa80ad9's 2 s settle
    newdir_repeat: int = 5           # the settle wait shows in some bursts only
    check_files: int = 100_000
    check_repeat: int = 3
    mem_files: int = 100_000
    mem_dirs: int = 10_000
    probe_gap: float = 0.05           # a new file every 50 ms while the daemon is under load
    watchdog_usec: int = 100_000      # pings every 50 ms from a responsive loop

    def scale(self, factor: float) -> None:
        """A smaller run with the same shape, for checking the harness itself."""
        s = lambda n: max(100, int(n * factor))  # noqa: E731
        self.rmrf_dirs, self.rescan_files = s(self.rmrf_dirs), s(self.rescan_files)
        self.outage_files, self.newdir_files = s(self.outage_files), s(self.newdir_files)
        self.newdir_short = min(self.newdir_short, self.newdir_files)
        self.check_files, self.mem_files = s(self.check_files), s(self.mem_files)
        self.mem_dirs = max(10, int(self.mem_dirs * factor))


class Stress:
    def __init__(self, cfg: StressConfig, variants: list[Variant], setup: Setup, server: MariaDB,
                 log=print) -> None:
        self.cfg, self.variants, self.setup, self.server, self.say = cfg, variants, setup, server, log
        self.results: dict = {"variants": [vars(v) for v in variants], "config": vars(cfg).copy(),
                              "notes": []}
        self.results["config"]["scenarios"] = list(cfg.scenarios)
        self.base = os.path.join(setup.base_path, "stress")

    # ---- helpers -----------------------------------------------------------------------
    def _env(self, **extra: str) -> dict[str, str]:
        return {"WATCHDOG_USEC": str(self.cfg.watchdog_usec), **extra}

    def _daemon(self, v: Variant, params, root: str, label: str, **extra: str) -> Proc:
        # WATCHDOG_PID as systemd sets it (the main pid): a shell exports its own pid, then
        # becomes the daemon by exec, so the pid stays the one the harness knows.
        wrapper = ["/bin/sh", "-c", 'export WATCHDOG_PID=$$; exec "$0" "$@"']
        return start_daemon(self.setup, params, root, f"{v.key}-{label}", wrapper=wrapper,
                            daemon_path=v.path, extra_env=self._env(**extra))

    def _ready(self, mark: int, proc: Proc, timeout: float = 300) -> float | None:
        return self.setup.notify.ready_at(mark, proc.alive, timeout)

    def _wait_rows(self, watcher: RowWatcher, n: int, proc: Proc, timeout: float) -> float | None:
        return watcher.wait_for(n, timeout, alive=proc.alive)

    def _stop(self, proc: Proc, res: dict) -> None:
        res["alive_at_end"] = proc.alive()
        output = proc.output()
        if "Traceback" in output:
            res["traceback"] = output.split("Traceback")[-1][-600:]
        res["exit_code"] = proc.stop()

    def _turn(self, res: dict, pid: int, t0: float, t1: float) -> None:
        time.sleep(0.2)   # the first ping after t1, from a responsive loop
        times = self.setup.notify.times("WATCHDOG=1", pid)
        gap, at, pings = longest_gap(times, t0, t1)
        res["longest_gap_ms"], res["gap_at_s"], res["pings"] = gap, at, pings
        # No ping after the window: the daemon was still in the turn when it ended.
        res["gap_open_ended"] = not any(t > t1 for t in times)
        res["ping_interval_ms"] = self.cfg.watchdog_usec / 2000

    def _sized(self, files: int, dirs: int) -> str:
        """A tree below the stress base made once per run (shared by variants and scenarios)."""
        name = f"t{files}-{dirs}"
        root = os.path.join(self.base, name)
        if not os.path.isdir(root):
            t0 = time.perf_counter()
            tree.generate(root, files, dirs)
            self.say(f"tree {name}: {files:,} files in {dirs:,} dirs, {time.perf_counter() - t0:.1f} s")
            time.sleep(3)   # older than the 2 s settle of walks (fa80ad9)
        return root

    def _each(self, scenario: str, fn) -> None:
        out = self.results.setdefault(scenario, {})
        for v in self.variants:
            try:
                out[v.key] = fn(v)
            except Exception as err:  # noqa: BLE001 - one failure must not lose the rest
                note = f"{scenario} {v.key} failed: {type(err).__name__}: {err}"
                out[v.key] = {"error": note}
                self.results["notes"].append(note)
                self.say(note)

    # ---- rm -rf of a large watched tree ------------------------------------------------
    def rmrf(self, v: Variant) -> dict:
        cfg = self.cfg
        root = os.path.join(self.base, f"rmrf-{v.key}")
        doomed = os.path.join(root, "doomed")
        t0 = time.perf_counter()
        tree.generate(doomed, cfg.rmrf_dirs, cfg.rmrf_dirs)
        dirs = tree.count_dirs(doomed)
        self.say(f"rmrf {v.key}: {cfg.rmrf_dirs:,} videos in {dirs:,} directories written in "
                 f"{time.perf_counter() - t0:.1f} s")
        time.sleep(3)
        params = self.server.fresh_database(f"{v.key}_rmrf")
        watcher = RowWatcher(params)
        mark = self.setup.notify.mark()
        proc = self._daemon(v, params, root, "rmrf")
        res: dict = {"dirs": dirs, "files": cfg.rmrf_dirs}
        try:
            t_all = self._wait_rows(watcher, cfg.rmrf_dirs, proc, 60 + cfg.rmrf_dirs / 500)
            if t_all is None or self._ready(mark, proc, 30) is None:
                raise RuntimeError(f"the tree was not registered ({watcher.resync()} rows); "
                                   f"log {proc.log_path}")
            res["cold_s"] = t_all - proc.t_start
            time.sleep(1)
            sampler = Sampler(proc.pid).start()
            probe = LatencyProbe(params, os.path.join(root, "probe"), cfg.probe_gap, v.key)
            probe.start()
            time.sleep(1)
            t_rm = time.time()
            subprocess.run(["rm", "-rf", "--", doomed], check=True)
            t_rm_done = time.time()
            # Over when the daemon takes new files again and its CPU has gone quiet.
            t_idle = sampler.wait_idle(t_rm_done, timeout=cfg.rmrf_timeout,
                                       also=lambda: probe.caught_up(time.time() - 0.5))
            t_end = (t_idle or time.time()) + 0.5
            time.sleep(max(0.0, t_end + 0.3 - time.time()))
            probe.stop()
            sampler.stop()
            res.update({"rm_s": t_rm_done - t_rm,
                        "caught_up_s": (t_idle - t_rm_done) if t_idle else None})
            self._turn(res, proc.pid, t_rm, t_end)
            res["latency"] = latency_stats(*probe.samples(t_rm, t_end))
            conn = connect(params, autocommit=True)
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM videos WHERE LEFT(des_video_path, %s) = %s",
                            (len(doomed) + 1, doomed + "/"))
                res["rows_left"] = int(cur.fetchone()[0])
            conn.close()
        finally:
            self._stop(proc, res)
            watcher.close()
            self.server.drop(params)
            shutil.rmtree(root, ignore_errors=True)
        self.say(f"rmrf {v.key}: rm {res['rm_s']:.1f} s, caught up {_f(res['caught_up_s'])} s later; "
                 f"longest ping gap {_f(res['longest_gap_ms'], 0)} ms; latency {_lat(res['latency'])}; "
                 f"{res['rows_left']} rows of the removed tree left")
        return res

    # ---- a periodic rescan of a registered tree -----------------------------------------
    def rescan(self, v: Variant) -> dict:
        cfg = self.cfg
        root = self._sized(cfg.rescan_files, max(1, cfg.rescan_files // 100))
        probe_dir = os.path.join(root, f"probe-{v.key}")
        params = self.server.fresh_database(f"{v.key}_rescan")
        watcher = RowWatcher(params)
        mark = self.setup.notify.mark()
        proc = self._daemon(v, params, root, "rescan",
                            VFS_NOTIFIER_RESCAN_INTERVAL=f"{cfg.rescan_interval:g}")
        res: dict = {"files": cfg.rescan_files, "interval_s": cfg.rescan_interval}
        try:
            t_all = self._wait_rows(watcher, cfg.rescan_files, proc, 60 + cfg.rescan_files / 500)
            if t_all is None or self._ready(mark, proc, 60) is None:
                raise RuntimeError(f"the tree was not registered ({watcher.resync()} rows); "
                                   f"log {proc.log_path}")
            res["cold_s"] = t_all - proc.t_start
            sampler = Sampler(proc.pid).start()
            t_idle = sampler.wait_idle(time.time(), quiet=0.5, timeout=60) or time.time()
            opens = DirOpens(root, skip=probe_dir).start()
            probe = LatencyProbe(params, probe_dir, cfg.probe_gap, v.key)
            probe.start()
            t0 = time.time()
            # A rescan shows as a burst of directory opens (its walk), followed by whatever
            # busy CPU stretch carries on from it (a forget pass); wait for `rescans` of them.
            deadline = t0 + cfg.rescans * (cfg.rescan_interval + 5) + 30
            windows: list[tuple[float, float]] = []
            while time.time() < deadline and proc.alive():
                time.sleep(0.5)
                now = time.time()
                windows = [self._rescan_window(w, sampler) for w in opens.bursts(t0, now)
                           if w[1] < now - 1.5]
                if len(windows) >= cfg.rescans:
                    break
            t1 = time.time()
            probe.stop()
            sampler.stop()
            opens.stop()
            self._turn(res, proc.pid, t0, t1)
            res["rescans_seen"] = [round(b - a, 2) for a, b in windows]
            res["latency"] = latency_stats(*probe.samples_in(windows))
            res["latency_all"] = latency_stats(*probe.samples(t0, t1))
            res["window_s"] = t1 - t0
            res["idle_after_cold_s"] = t_idle - t_all
        finally:
            self._stop(proc, res)
            watcher.close()
            self.server.drop(params)
            shutil.rmtree(probe_dir, ignore_errors=True)
        self.say(f"rescan {v.key}: {len(res['rescans_seen'])} rescans ({res['rescans_seen']} s busy); "
                 f"longest ping gap {_f(res['longest_gap_ms'], 0)} ms; latency during them "
                 f"{_lat(res['latency'])} (whole window {_lat(res['latency_all'])})")
        return res

    @staticmethod
    def _rescan_window(burst: tuple[float, float], sampler: Sampler) -> tuple[float, float]:
        start, end = burst
        for a, b in sampler.busy_windows(start - 0.5, end + 60):
            if a <= end + 0.5:
                end = max(end, b)
        return start, end + 0.1

    # ---- files arriving while the database is down ----------------------------------------
    def outage(self, v: Variant) -> dict:
        cfg = self.cfg
        root = os.path.join(self.base, f"outage-{v.key}")
        dirs = [os.path.join(root, f"d{d:02d}") for d in range(20)]
        for d in dirs:
            os.makedirs(d)
        params = self.server.fresh_database(f"{v.key}_outage")
        mark = self.setup.notify.mark()
        proc = self._daemon(v, params, root, "outage")
        res: dict = {"files": cfg.outage_files}
        sampler = None
        try:
            if self._ready(mark, proc, 60) is None:
                raise RuntimeError(f"the daemon did not get ready; log {proc.log_path}")
            sampler = Sampler(proc.pid, interval=0.25).start()
            time.sleep(2)
            t_down = time.time()
            self.server.pause()
            time.sleep(1)
            t_write = time.time()
            out = subprocess.run([PYTHON, "-m", "bench.writer", str(cfg.outage_files), "o", *dirs],
                                 cwd=self.setup.repo, check=True, capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": self.setup.repo}).stdout
            w = json.loads(out)
            time.sleep(cfg.outage_hold)
            t_up0 = time.time()
            t_up = self.server.resume()
            watcher = RowWatcher(params)
            t_all = self._wait_rows(watcher, cfg.outage_files, proc, 120 + cfg.outage_files / 500)
            time.sleep(2)
            t_end = time.time()
            sampler.stop()
            rows, distinct = watcher.totals()
            watcher.close()
            before = sampler.rss_mb(t_down - 2, t_down)
            during = sampler.rss_mb(t_down, t_up0)
            res.update({
                "writer_s": w["t_last_close"] - w["t_start"],
                "rss_before_mb": statistics.median(before) if before else None,
                "rss_peak_outage_mb": max(during) if during else None,
                "rss_end_outage_mb": during[-1] if during else None,
                "rss_peak_mb": max(sampler.rss_mb(0, t_end)),
                "hwm_mb": family_memory_kb(proc.pid).get("VmHWM", 0) / 1024 if proc.alive() else None,
                "rss_series": [(round(t - t_down, 1), round(kb / 1024, 1))
                               for t, kb in sampler.rss[::4]],
                "events": {"down": 0.0, "writer_start": t_write - t_down,
                           "writer_end": w["t_last_close"] - t_down, "up": t_up - t_down},
                "mariadb_start_s": t_up - t_up0,
                "caught_up_s": (t_all - t_up) if t_all else None,
                "rows": rows, "distinct": distinct})
            if res["rss_before_mb"] is not None and res["rss_peak_outage_mb"] is not None:
                res["growth_mb"] = res["rss_peak_outage_mb"] - res["rss_before_mb"]
            self._turn(res, proc.pid, t_down, t_end)
        finally:
            if sampler:
                sampler.stop()
            if self.server.proc is None or self.server.proc.poll() is not None:
                self.server.resume()
            self._stop(proc, res)
            self.server.drop(params)
            shutil.rmtree(root, ignore_errors=True)
        self.say(f"outage {v.key}: VmRSS {_f(res.get('rss_before_mb'), 1)} MB before, peak "
                 f"{_f(res.get('rss_peak_outage_mb'), 1)} MB during the outage "
                 f"(+{_f(res.get('growth_mb'), 1)} MB); all {res['rows']:,} rows "
                 f"{_f(res.get('caught_up_s'))} s after MariaDB answered again")
        return res

    # ---- a burst into a brand-new directory -----------------------------------------------
    def burst_newdir(self, v: Variant, files: int = 0) -> dict:
        cfg = self.cfg
        files = files or cfg.newdir_files
        root = os.path.join(self.base, f"newdir-{v.key}")
        os.makedirs(root)
        params = self.server.fresh_database(f"{v.key}_newdir")
        watcher = RowWatcher(params)
        mark = self.setup.notify.mark()
        proc = self._daemon(v, params, root, "newdir")
        res: dict = {"files": files, "runs": []}
        try:
            if self._ready(mark, proc, 60) is None:
                raise RuntimeError(f"the daemon did not get ready; log {proc.log_path}")
            for rep in range(cfg.newdir_repeat):
                time.sleep(1)
                base = watcher.resync()
                new = os.path.join(root, f"nouveau {rep} – dossier d'été")
                writer = subprocess.Popen(
                    [PYTHON, "-m", "bench.writer", "--mkdir", str(files), f"n{rep}", new],
                    cwd=self.setup.repo, stdout=subprocess.PIPE,
                    env={**os.environ, "PYTHONPATH": self.setup.repo})
                t_rows = watcher.wait_for(base + files, 30 + files / 500)
                w = json.loads(writer.communicate()[0])
                run = {"writer_files_per_s": files / (w["t_last_close"] - w["t_start"])}
                if t_rows:
                    run.update({"lag_s": t_rows - w["t_last_close"],
                                "files_per_s": files / (t_rows - w["t_start"])})
                else:
                    run["error"] = f"only {watcher.resync() - base} of {files} rows"
                res["runs"].append(run)
                self.say(f"burst-newdir {v.key} {files:,} files: " + (
                    f"lag {run['lag_s']:.3f} s, {run['files_per_s']:,.0f} files/s "
                    f"(writer {run['writer_files_per_s']:,.0f}/s)" if t_rows else run["error"]))
            lags = [r["lag_s"] for r in res["runs"] if "lag_s" in r]
            res["lag_s"] = statistics.median(lags) if len(lags) == len(res["runs"]) else None
            res["rows"], res["distinct"] = watcher.totals()
        finally:
            self._stop(proc, res)
            watcher.close()
            self.server.drop(params)
            shutil.rmtree(root, ignore_errors=True)
        return res

    # ---- the cost of the structure check on a cold start ------------------------------------
    def check(self) -> None:
        cfg = self.cfg
        n = cfg.check_files
        root = self._sized(n, max(1, n // 100))
        runs: dict[str, list[float | None]] = {"limit": [], "limit-kept": []}
        kinds = [("limit", None, "cold"), ("limit-kept", None, "cold-kept")] + [
            (f"{v.key}:{flag}", v, flag) for v in self.variants for flag in ("1", "0")]
        for i in range(cfg.check_repeat):
            for name, v, flag in (kinds if i % 2 == 0 else kinds[::-1]):
                params = self.server.fresh_database(f"check_{name.replace(':', '_')}")
                watcher = RowWatcher(params)
                if v is None:
                    proc = start_limit(self.setup, params, root, flag, f"check-{name}")
                else:
                    proc = self._daemon(v, params, root, f"check-{flag}",
                                        VFS_NOTIFIER_CHECK_STRUCTURE=flag)
                t = watcher.wait_for(n, 60 + n / 500, alive=proc.alive)
                secs = t - proc.t_start if t else None
                proc.stop()
                watcher.close()
                self.server.drop(params)
                runs.setdefault(name, []).append(secs)
                self.say(f"check cold {name:10s} {n:,} files: {_f(secs)} s")
        med = {k: (statistics.median(x) if None not in x else None) for k, x in runs.items()}
        out = self.results.setdefault("check", {})
        out["limit"] = {"seconds": med["limit"], "runs_s": runs["limit"]}
        out["limit-kept"] = {"seconds": med["limit-kept"], "runs_s": runs["limit-kept"]}
        for v in self.variants:
            on, off = med.get(f"{v.key}:1"), med.get(f"{v.key}:0")
            ons, offs = runs.get(f"{v.key}:1", []), runs.get(f"{v.key}:0", [])
            # The check's cost from the fastest run of each: load from elsewhere on a shared
            # machine only ever slows a run, so the minimum is the least disturbed figure.
            best_on = min(ons) if ons and None not in ons else None
            best_off = min(offs) if offs and None not in offs else None
            out[v.key] = {"files": n, "on_s": on, "off_s": off, "runs_on_s": ons, "runs_off_s": offs,
                          "best_on_s": best_on, "best_off_s": best_off,
                          "cost": (best_on / best_off - 1) if best_on and best_off else None,
                          "ratio_limit": (on / med["limit"]) if on and med["limit"] else None}

    # ---- resident memory at N files, after a cold start and after a restart ---------------------
    def memory(self, v: Variant) -> dict:
        cfg = self.cfg
        root = self._sized(cfg.mem_files, cfg.mem_dirs)
        params = self.server.fresh_database(f"{v.key}_memory")
        watcher = RowWatcher(params)
        res: dict = {"files": cfg.mem_files, "dirs": cfg.mem_dirs}
        try:
            for phase in ("cold", "restart"):
                mark = self.setup.notify.mark()
                proc = self._daemon(v, params, root, f"memory-{phase}")
                t = watcher.wait_for(cfg.mem_files, 60 + cfg.mem_files / 500, alive=proc.alive)
                ready = self._ready(mark, proc, 120)
                sampler = Sampler(proc.pid, interval=0.1).start()
                idle = sampler.wait_idle(time.time(), quiet=1.0, timeout=120)
                time.sleep(2)
                sampler.stop()
                m = family_memory_kb(proc.pid)   # the looker too, if it runs
                res[phase] = {"seconds": (t - proc.t_start) if t else None,
                              "ready_s": (ready - proc.t_start) if ready else None,
                              "idle_s": (idle - proc.t_start) if idle else None,
                              "rss_mb": m["VmRSS"] / 1024, "hwm_mb": m["VmHWM"] / 1024}
                res[phase]["exit_code"] = proc.stop()
                self.say(f"memory {v.key} {phase}: VmRSS {res[phase]['rss_mb']:.1f} MB "
                         f"(peak {res[phase]['hwm_mb']:.1f}) at {cfg.mem_files:,} files")
            res["rows"], res["distinct"] = watcher.totals()
        finally:
            watcher.close()
            self.server.drop(params)
        return res

    # ---- the whole run ------------------------------------------------------------------------
    def run(self) -> dict:
        os.makedirs(self.base, exist_ok=True)
        plan = [("rmrf", self.rmrf), ("rescan", self.rescan), ("outage", self.outage),
                ("burst-newdir", self.burst_newdir), ("memory", self.memory)]
        for name, fn in plan[:4]:
            if name in self.cfg.scenarios:
                self._each(name, fn)
        if "burst-newdir" in self.cfg.scenarios and self.cfg.newdir_short:
            self._each("burst-newdir-short", lambda v: self.burst_newdir(v, self.cfg.newdir_short))
        if "check" in self.cfg.scenarios:
            try:
                self.check()
            except Exception as err:  # noqa: BLE001
                self.results["notes"].append(f"check failed: {type(err).__name__}: {err}")
                self.say(self.results["notes"][-1])
        if "memory" in self.cfg.scenarios:
            self._each("memory", self.memory)
        shutil.rmtree(self.base, ignore_errors=True)
        return self.results


def _f(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def _lat(lat: dict) -> str:
    if "p99_ms" not in lat:
        return f"no sample ({lat.get('missed', 0)} missed)"
    return (f"p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms "
            f"of {lat['files']}" + (f", {lat['missed']} missed" if lat["missed"] else ""))
