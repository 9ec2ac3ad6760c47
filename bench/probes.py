"""Black-box instruments for a running daemon: new-file latency under load, CPU and memory over
time, and the longest gap between its watchdog pings.

None of them looks inside the daemon: a scenario measures whatever revision is running, old or new.
"""
from __future__ import annotations

import ctypes
import os
import select
import statistics
import struct
import threading
import time

from . import media
from .db import DbParams, connect
from .procs import children, cpu_ticks, family_memory_kb


class LatencyProbe:
    """Writes a new small video every `gap` seconds into `directory` (open loop: it does not wait
    for the previous row, so a stalled daemon shows as long latencies, not as fewer samples) and
    times each until its row is seen by a separate connection polling every few milliseconds."""

    def __init__(self, params: DbParams, directory: str, gap: float = 0.05, tag: str = "p") -> None:
        self.params, self.directory, self.gap, self.tag = params, directory, gap, tag
        os.makedirs(directory, exist_ok=True)
        self.closed: dict[str, float] = {}    # path -> time.time() of its close
        self.seen: dict[str, float] = {}      # path -> time its row was first seen
        self._writing = threading.Event()
        self._polling = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.max_id = 0

    def start(self) -> None:
        conn = connect(self.params, autocommit=True)
        with conn.cursor() as cur:
            cur.execute("SELECT COALESCE(MAX(id), 0) FROM videos")
            self.max_id = int(cur.fetchone()[0])
        self._writing.set()
        self._polling.set()
        self._threads = [threading.Thread(target=self._write, daemon=True),
                         threading.Thread(target=self._poll, args=(conn,), daemon=True)]
        for t in self._threads:
            t.start()

    def _write(self) -> None:
        clips = media.clips()
        i = 0
        next_at = time.monotonic()
        while self._writing.is_set():
            path = os.path.join(self.directory, f"probe {self.tag} {i:06d} é.mp4")
            clips.write(path)
            with self._lock:
                self.closed[path] = time.time()
            i += 1
            next_at += self.gap
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _poll(self, conn) -> None:
        with conn.cursor() as cur:
            while self._polling.is_set():
                cur.execute("SELECT id, des_video_path FROM videos WHERE id > %s ORDER BY id "
                            "LIMIT 5000", (self.max_id,))
                rows = cur.fetchall()
                now = time.time()
                if rows:
                    self.max_id = rows[-1][0]
                    with self._lock:
                        for _, path in rows:
                            if path in self.closed and path not in self.seen:
                                self.seen[path] = now
                else:
                    time.sleep(0.003)
        conn.close()

    def stop(self, grace: float = 10.0) -> None:
        """Stop writing; give the rows of the last files `grace` seconds to come."""
        self._writing.clear()
        self._threads[0].join()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.seen) >= len(self.closed):
                    break
            time.sleep(0.05)
        self._polling.clear()
        self._threads[1].join()

    def caught_up(self, before: float) -> bool:
        """Every file closed before `before` has its row: the daemon is taking events again."""
        with self._lock:
            return all(p in self.seen for p, t in self.closed.items() if t < before)

    def samples(self, t0: float = 0.0, t1: float = float("inf")) -> tuple[list[float], int]:
        """(latencies in ms of the files closed in [t0, t1], how many of those never got a row)."""
        with self._lock:
            lat = [(self.seen[p] - t) * 1000 for p, t in self.closed.items() if t0 <= t <= t1 and p in self.seen]
            missed = sum(1 for p, t in self.closed.items() if t0 <= t <= t1 and p not in self.seen)
        return lat, missed

    def samples_in(self, windows: list[tuple[float, float]]) -> tuple[list[float], int]:
        lat, missed = [], 0
        for t0, t1 in windows:
            a, b = self.samples(t0, t1)
            lat += a
            missed += b
        return lat, missed


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, int(-(-p * len(ordered) // 100)))
    return ordered[rank - 1]


def latency_stats(samples: list[float], missed: int) -> dict:
    res: dict = {"files": len(samples) + missed, "missed": missed}
    if samples:
        res.update({"p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99),
                    "max_ms": max(samples), "mean_ms": statistics.fmean(samples)})
    return res


class Sampler:
    """Samples a process's CPU time and VmRSS every `interval` seconds in a thread; its
    children's too (the service's looker): what the service as a whole uses."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.tick = os.sysconf("SC_CLK_TCK")
        self.cpu: list[tuple[float, float]] = []    # (time, CPU seconds used so far)
        self.rss: list[tuple[float, int]] = []      # (time, VmRSS kB)
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Sampler":
        self._running.set()
        self._thread.start()
        return self

    def _run(self) -> None:
        while self._running.is_set():
            try:
                # Own time, reaped children's time and live children's time: a sum that only
                # grows as helpers come and go.
                cpu = cpu_ticks(self.pid, reaped=True)
                for kid in children(self.pid):
                    try:
                        cpu += cpu_ticks(kid, reaped=False)
                    except (OSError, IndexError, ValueError):
                        pass
                cpu /= self.tick
                rss = family_memory_kb(self.pid).get("VmRSS", 0)
            except (OSError, IndexError, ValueError):
                return
            now = time.time()
            self.cpu.append((now, cpu))
            self.rss.append((now, rss))
            time.sleep(self.interval)

    def stop(self) -> None:
        self._running.clear()
        self._thread.join()

    def usage(self, t0: float, t1: float) -> float | None:
        """Share of one CPU the process used between t0 and t1 (None: too few samples to say,
        e.g. while this thread was starved: never mistake that for an idle process)."""
        pts = [p for p in self.cpu if t0 <= p[0] <= t1]
        if len(pts) < 2 or pts[-1][0] - pts[0][0] < (t1 - t0) / 2:
            return None
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])

    def wait_idle(self, after: float, quiet: float = 1.0, below: float = 0.25,
                  timeout: float = 300, also=lambda: True) -> float | None:
        """Block until the process has used less than `below` of a CPU for `quiet` seconds after
        time `after` (and `also()` holds); the start of that quiet stretch, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._thread.is_alive():
            now = time.time()
            use = self.usage(now - quiet, now)
            if now - quiet >= after and use is not None and use < below and also():
                return now - quiet
            time.sleep(0.1)
        return None

    def busy_windows(self, t0: float, t1: float, above: float = 0.5, join: float = 0.5,
                     min_len: float = 0.2) -> list[tuple[float, float]]:
        """Stretches between t0 and t1 where the process used more than `above` of a CPU
        (sample by sample; stretches less than `join` s apart count as one)."""
        pts = [p for p in self.cpu if t0 <= p[0] <= t1]
        windows: list[list[float]] = []
        for (ta, ca), (tb, cb) in zip(pts, pts[1:]):
            if tb > ta and ((cb - ca) / (tb - ta) > above or tb - ta > 0.5):   # starved: busy
                if windows and ta - windows[-1][1] <= join:
                    windows[-1][1] = tb
                else:
                    windows.append([ta, tb])
        return [(a, b) for a, b in windows if b - a >= min_len]

    def rss_mb(self, t0: float = 0.0, t1: float = float("inf")) -> list[float]:
        return [kb / 1024 for t, kb in self.rss if t0 <= t <= t1]


def longest_gap(pings: list[float], t0: float, t1: float) -> tuple[float | None, float | None, int]:
    """The longest interval between consecutive pings covering [t0, t1] (from the last ping
    before t0 to the first after t1): (gap in ms, when it began relative to t0 in s, pings).
    With no ping after t1 the gap runs to t1: then it is only a lower bound."""
    before = [t for t in pings if t < t0]
    inside = [t for t in pings if t0 <= t <= t1]
    after = [t for t in pings if t > t1]
    # Without a ping on either side the window's edge stands in for it (a lower bound).
    points = (before[-1:] or [t0]) + inside + (after[:1] or [t1])
    if len(points) < 2:
        return None, None, len(inside)
    gap, start = max((b - a, a) for a, b in zip(points, points[1:]))
    return gap * 1000, start - t0, len(inside)


class DirOpens:
    """When a tree's directories are opened, from inotify's IN_OPEN on each of them: a walk of
    the tree (a rescan) shows as a burst of opens, even where it costs too little CPU to see.
    The harness itself must not list the watched directories while this runs."""

    IN_OPEN, IN_NONBLOCK, HEADER = 0x20, 0o4000, struct.Struct("iIII")

    def __init__(self, root: str, skip: str = "") -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(self.IN_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        # The skipped directory's own opens show on its parent's watch, under its name.
        self._skip_parent, self._skip_name = -1, os.fsencode(os.path.basename(skip))
        for top, dirs, _ in os.walk(root):
            dirs[:] = [d for d in dirs if os.path.join(top, d) != skip]
            wd = self._libc.inotify_add_watch(self.fd, os.fsencode(top), self.IN_OPEN)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {top}")
            if skip and os.path.dirname(skip) == top:
                self._skip_parent = wd
        self.opens: list[float] = []
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "DirOpens":
        try:   # our own walk above, which opened the children of directories already watched
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass
        self._running.set()
        self._thread.start()
        return self

    def _run(self) -> None:
        while self._running.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            now, i = time.time(), 0
            while i < len(data):
                wd, mask, _, size = self.HEADER.unpack_from(data, i)
                name = data[i + self.HEADER.size:i + self.HEADER.size + size].rstrip(b"\0")
                if mask & self.IN_OPEN and not (wd == self._skip_parent and name == self._skip_name):
                    self.opens.append(now)
                i += self.HEADER.size + size

    def stop(self) -> None:
        self._running.clear()
        self._thread.join()
        os.close(self.fd)

    def bursts(self, t0: float, t1: float, split: float = 1.0) -> list[tuple[float, float]]:
        """Stretches of opens between t0 and t1, split where none came for `split` seconds."""
        out: list[list[float]] = []
        for t in (t for t in list(self.opens) if t0 <= t <= t1):
            if out and t - out[-1][1] <= split:
                out[-1][1] = t
            else:
                out.append([t, t])
        return [(a, b) for a, b in out]
