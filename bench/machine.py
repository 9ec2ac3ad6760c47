"""The machine and the versions a run used, for the report."""
from __future__ import annotations

import os
import platform
import subprocess


def _first_line(argv: list[str], cwd: str | None = None) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unavailable"


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def describe(repo: str, workdir: str, mariadb_version: str, daemon_version: str | None) -> dict:
    import pyinotify
    import pymysql
    return {
        "cpus": os.cpu_count(), "cpu": _cpu_model(), "ram_gb": round(_mem_total_gb(), 1),
        "kernel": platform.release(), "os": _os_name(),
        "filesystem": " ".join(_first_line(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T",
                                            workdir]).split()),
        "python": f"{platform.python_version()} ({os.path.realpath('/usr/bin/python3')})",
        "mariadb": mariadb_version, "pymysql": pymysql.__version__,
        "pyinotify": pyinotify.__version__,
        "mysql_client": _first_line(["mysql", "--version"]),
        "inotify_tools": _first_line(["dpkg-query", "-W", "-f=${Version}", "inotify-tools"]),
        "bash": _first_line(["bash", "--version"]),
        "vfs_notifier": daemon_version or "not runnable",
        "commit": _first_line(["git", "describe", "--always", "--dirty"], cwd=repo),
        "inotify_limits": {k: open(f"/proc/sys/fs/inotify/{k}").read().strip()
                           for k in ("max_user_watches", "max_queued_events")},
    }
