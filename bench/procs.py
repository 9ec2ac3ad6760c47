"""Starting, watching and stopping contender processes, and reading their memory from /proc."""
from __future__ import annotations

import os
import signal
import subprocess
import time

PYTHON = "/usr/bin/python3"


class Proc:
    """A contender process in its own session, so a shell pipeline stops as a whole."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, log_path: str) -> None:
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.t_start = time.time()
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_output(self, text: str, timeout: float) -> float | None:
        """Wait until the process has printed `text`; the time it was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return time.time()
            if not self.alive():
                return None
            time.sleep(0.01)
        return None

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM to the whole session; SIGKILL if it does not go. The main process's exit code."""
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        code = self.wait(timeout)
        if code is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait()
        else:  # the pipeline's other members (inotifywait, a mysql client) may still be about
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
        return code


def session_pids(sid: int) -> list[int]:
    """Every process in the session `sid` (field 6 of /proc/PID/stat)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid:
            pids.append(int(name))
    return pids


def cpu_ticks(pid: int, reaped: bool = False) -> int:
    """CPU time of `pid` (user + system) in clock ticks; with `reaped`, plus its children's
    that it waited for."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks + int(fields[13]) + int(fields[14]) if reaped else ticks


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of one process, in kB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (a service's helper, such as its looker)."""
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids.extend(int(k) for k in f.read().split())
    except OSError:
        pass
    return kids


def family_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process and its live children, summed: what the service holds."""
    total = memory_kb(pid)
    for kid in children(pid):
        try:
            m = memory_kb(kid)
        except OSError:
            continue
        total["VmRSS"] = total.get("VmRSS", 0) + m.get("VmRSS", 0)
        total["VmHWM"] = total.get("VmHWM", 0) + m.get("VmHWM", 0)
    return total


def session_memory_kb(sid: int) -> dict[str, int]:
    """Summed VmRSS/VmHWM of every process of a session (a pipeline counts as one contender)."""
    total = {"VmRSS": 0, "VmHWM": 0, "processes": 0}
    for pid in session_pids(sid):
        try:
            m = memory_kb(pid)
        except OSError:
            continue
        total["VmRSS"] += m.get("VmRSS", 0)
        total["VmHWM"] += m.get("VmHWM", 0)
        total["processes"] += 1
    return total
