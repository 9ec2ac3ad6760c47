"""A throwaway MariaDB server in a temporary directory, on a free loopback port.

Defaults are left as Debian ships them (InnoDB, durable commits: innodb_flush_log_at_trx_commit=1),
except the binary log, which a single test server does not need.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pymysql

from .db import VIDEOS_TABLE, DbParams

USER, PASSWORD = "bench", "bench-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MariaDB:
    def __init__(self, workdir: str) -> None:
        self.dir = os.path.join(workdir, "mariadb")
        self.port = free_port()
        self.socket = os.path.join(self.dir, "sock")
        self.proc: subprocess.Popen | None = None
        self._databases = 0

    def start(self, timeout: float = 60) -> None:
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}",
                        "--auth-root-authentication-method=normal", *as_root],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.log = open(os.path.join(self.dir, "mariadbd.log"), "ab")
        conn = self._launch(timeout)
        with conn.cursor() as cur:
            for host in ("127.0.0.1", "localhost"):
                cur.execute(f"CREATE USER '{USER}'@'{host}' IDENTIFIED BY '{PASSWORD}'")
                cur.execute(f"GRANT ALL ON *.* TO '{USER}'@'{host}'")
            cur.execute("SELECT VERSION()")
            self.version = cur.fetchone()[0]
        conn.close()

    def _launch(self, timeout: float) -> pymysql.connections.Connection:
        """Start mariadbd on the existing data directory; a root connection once it answers."""
        data, tmp = os.path.join(self.dir, "data"), os.path.join(self.dir, "tmp")
        os.makedirs(tmp, exist_ok=True)  # its own: others clean /tmp while it runs
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={self.socket}",
             f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-log-bin", f"--tmpdir={tmp}",
             "--max-connections=500", *as_root],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return pymysql.connect(unix_socket=self.socket, user="root")
            except pymysql.err.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mariadbd did not start; see {self.log.name}")
                time.sleep(0.05)

    def pause(self, timeout: float = 60) -> None:
        """An outage: stop the server (cleanly, so that it comes back quickly), keep its data."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout)

    def resume(self, timeout: float = 60) -> float:
        """End the outage on the same port and data; the time (time.time()) it answered."""
        self._launch(timeout).close()
        return time.time()

    def root(self) -> pymysql.connections.Connection:
        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)

    def fresh_database(self, label: str) -> DbParams:
        """A new, empty database holding the `videos` table, for one contender's run."""
        self._databases += 1
        name = f"b{self._databases:03d}_{label}"[:64]
        conn = self.root()
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{name}`")
            cur.execute(VIDEOS_TABLE)
        conn.close()
        return DbParams("127.0.0.1", self.port, USER, PASSWORD, name)

    def drop(self, params: DbParams) -> None:
        conn = self.root()
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{params.database}`")
        conn.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
