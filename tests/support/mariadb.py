"""A throwaway MariaDB server owned by the test session: real mariadbd, its own datadir and port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Optional

import pymysql


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MariaDB:
    host = "127.0.0.1"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.datadir = base / "data"
        self.socket = str(base / "mysqld.sock")
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log = base / "mariadbd.log"

    def install(self) -> None:
        for tool in ("mariadb-install-db", "mariadbd"):
            if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
                raise RuntimeError(f"{tool} not found: install mariadb-server (scripts/test does, as root)")
        self.base.mkdir(parents=True, exist_ok=True)
        cmd = ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
               "--auth-root-authentication-method=normal", "--skip-test-db"]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=120)

    def start(self, timeout: float = 60) -> None:
        binary = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        cmd = [binary, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
               f"--port={self.port}", "--bind-address=127.0.0.1", "--skip-log-bin",
               f"--pid-file={self.base / 'mariadbd.pid'}", f"--log-error={self.log}",
               "--skip-name-resolve", "--innodb-buffer-pool-size=128M",
               # Tests need correctness, not durability against power loss.
               "--innodb-flush-log-at-trx-commit=2", "--max-connections=500"]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connect().close()
                return
            except pymysql.MySQLError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                    raise RuntimeError(f"mariadbd did not start (exit {self.proc.poll()}):\n{tail}")
                time.sleep(0.1)

    def stop(self) -> None:
        """A clean shutdown (an outage, as an operator's restart makes one)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown."""
        self._end(signal.SIGKILL)

    def _end(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def connect(self, database: Optional[str] = None, **kwargs) -> pymysql.connections.Connection:
        return pymysql.connect(host=self.host, port=self.port, user="root", password="",
                               database=database, charset="utf8mb4", autocommit=True,
                               connect_timeout=5, **kwargs)

    def new_database(self, password: str = "s3cret-Pw!") -> dict[str, str]:
        """A fresh database and a user that owns it; the MYSQL_* environment for the service."""
        name = "t_" + uuid.uuid4().hex[:12]
        user = "u_" + name[2:10]
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'%'")
        return {"MYSQL_HOST": self.host, "MYSQL_PORT": str(self.port), "MYSQL_USER": user,
                "MYSQL_PASS": password, "MYSQL_DB_NAME": name}
