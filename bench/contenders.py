"""How each contender is started: the same environment variables for all, one process each.

    limit         python3 -m bench.limit cold|warm         (runs to completion)
    naive         python3 -m bench.naive cold|watch        (cold runs to completion)
    shell         bench/shell_loop.sh                      (inotifywait | while read; mysql)
    vfs-notifier  /usr/bin/python3 -m vfs_notifier run     (the real daemon, default logging)
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from .db import DbParams
from .notify import NotifyListener
from .procs import PYTHON, Proc

LIMIT, NAIVE, SHELL, DAEMON = "limit", "naive", "shell", "vfs-notifier"
ALL = (LIMIT, NAIVE, SHELL, DAEMON)


@dataclass
class Setup:
    repo: str           # the checkout: bench/ and vfs_notifier/ are imported from here
    workdir: str        # scratch space: logs, configs, the notify socket
    base_path: str      # BASE_PATH: parent of every tree
    base_url: str
    notify: NotifyListener
    daemon_path: str = ""   # where vfs_notifier/ is imported from (default: the checkout)

    def env(self, params: DbParams, root: str, label: str) -> dict[str, str]:
        logs = os.path.join(self.workdir, "logs", label)
        os.makedirs(logs, exist_ok=True)
        empty = os.path.join(self.workdir, "empty.toml")
        if not os.path.exists(empty):
            open(empty, "w").close()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MYSQL_", "VFS_NOTIFIER_", "NOTIFY_SOCKET", "WATCHDOG_"))}
        env.update(params.env())
        env.update({"CLIENT_VIDEO_DIR": root, "BASE_PATH": self.base_path,
                    "NGINX_BASE_URL": self.base_url, "LOG_BASE_DIRECTORY": logs,
                    "VFS_NOTIFIER_CONFIG": empty, "PYTHONPATH": self.repo,
                    "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
        return env

    def log(self, label: str) -> str:
        os.makedirs(os.path.join(self.workdir, "logs"), exist_ok=True)
        return os.path.join(self.workdir, "logs", f"{label}.out")


def start_limit(s: Setup, params: DbParams, root: str, mode: str, label: str) -> Proc:
    return Proc([PYTHON, "-m", "bench.limit", mode], s.env(params, root, label), s.repo, s.log(label))


def start_naive(s: Setup, params: DbParams, root: str, mode: str, label: str) -> Proc:
    return Proc([PYTHON, "-m", "bench.naive", mode], s.env(params, root, label), s.repo, s.log(label))


def start_shell(s: Setup, params: DbParams, root: str, label: str) -> Proc:
    script = os.path.join(s.repo, "bench", "shell_loop.sh")
    return Proc(["/bin/bash", script], s.env(params, root, label), s.repo, s.log(label))


def start_daemon(s: Setup, params: DbParams, root: str, label: str,
                 wrapper: list[str] | None = None, daemon_path: str | None = None,
                 extra_env: dict[str, str] | None = None) -> Proc:
    """The real daemon; `daemon_path` (default: the run's) says which vfs_notifier/ it imports,
    `extra_env` adds settings (a rescan interval, the watchdog) for one scenario."""
    env = s.env(params, root, label)
    env["NOTIFY_SOCKET"] = s.notify.path
    path = (s.daemon_path if daemon_path is None else daemon_path) or s.repo
    env["PYTHONPATH"] = path
    env.update(extra_env or {})
    argv = [*(wrapper or []), PYTHON, "-m", "vfs_notifier", "run"]
    # Run from the revision's own directory: `python3 -m` puts the working directory first on
    # sys.path, ahead of PYTHONPATH, so started from the checkout it would import the checkout's
    # vfs_notifier/ whatever revision was asked for.
    return Proc(argv, env, path, s.log(label))


def export_daemon(repo: str, rev: str, dest: str) -> str:
    """vfs_notifier/ as committed at `rev`, unpacked into dest: a run of record measures a
    commit, not whatever is half-edited in the working tree. Returns the commit id."""
    os.makedirs(dest, exist_ok=True)
    archive = subprocess.run(["git", "archive", rev, "vfs_notifier"], cwd=repo, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def daemon_available(path: str) -> str | None:
    """The daemon's version when `python3 -m vfs_notifier --version` works, else None."""
    try:
        out = subprocess.run([PYTHON, "-m", "vfs_notifier", "--version"], cwd=path, timeout=30,
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or out.stderr.strip()) if out.returncode == 0 else None
